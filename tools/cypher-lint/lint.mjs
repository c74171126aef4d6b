// Lints Cypher with Neo4j's own parser and semantic analyzer (@neo4j-cypher/language-support).
//
//   stdin:  {"NAME": "MATCH ... RETURN ...", ...}
//   stdout: {"NAME": [{"severity": "error"|"warning"|..., "message": ..., "start": n, "end": n,
//                      "line": n, "column": n}, ...], ...}
//
// Exit status 0 when the input was read (diagnostics or not), 2 on bad input: the caller
// decides what an error is. Positions are 0-based offsets into the query string; line and
// column are 1-based for reading.
import { lintCypherQuery, parseParameters, parseStatementsStrs, testData } from '@neo4j-cypher/language-support';

const CYPHER_VERSION = 'CYPHER 5'; // what Neo4j 5 runs by default

// The package ships, as its test fixture, the function and procedure registry dumped from a
// real Neo4j (SHOW FUNCTIONS / SHOW PROCEDURES). Without a registry the analyzer cannot
// tell stDev from stDevv, so we pass it, keeping only what a plain Neo4j 5 has: built-in
// functions, and no plugin (APOC, GDS) procedures.
function builtInRegistry() {
  const mock = testData?.mockSchema;
  const functions = mock?.functions?.[CYPHER_VERSION] ?? {};
  const procedures = mock?.procedures?.[CYPHER_VERSION] ?? {};
  const keep = (registry, predicate) =>
    Object.fromEntries(Object.entries(registry).filter(([, entry]) => predicate(entry)));
  return {
    functions: keep(functions, (f) => f.isBuiltIn === true),
    procedures: keep(procedures, (p) => !/^(apoc|gds)\./.test(p.name)),
  };
}

const SEVERITY = { 1: 'error', 2: 'warning', 3: 'information', 4: 'hint' };

function lintOne(query, registry) {
  // Values always travel as $parameters: declare the ones the query uses, so the only
  // "Parameter $x is not defined" left would be a bug in this script.
  const parameters = Object.fromEntries(parseParameters(query, false).map((name) => [name, null]));
  const dbSchema = {
    defaultLanguage: CYPHER_VERSION,
    functions: { [CYPHER_VERSION]: registry.functions },
    procedures: { [CYPHER_VERSION]: registry.procedures },
    parameters,
  };
  const { diagnostics } = lintCypherQuery(query, dbSchema, { consoleCommandsEnabled: false });
  const found = diagnostics.map((d) => ({
    severity: SEVERITY[d.severity] ?? String(d.severity),
    message: d.message,
    start: d.offsets?.start ?? null,
    end: d.offsets?.end ?? null,
    line: d.range ? d.range.start.line + 1 : null,
    column: d.range ? d.range.start.character + 1 : null,
  }));
  // A driver runs one statement per call; "A; B" would fail there, not here.
  const statements = parseStatementsStrs(query).filter((s) => s.trim().replace(/;$/, '').trim());
  if (statements.length !== 1) {
    found.push({
      severity: 'error',
      message: `expected exactly one statement, found ${statements.length}`,
      start: 0,
      end: query.length,
      line: 1,
      column: 1,
    });
  }
  return found;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function main() {
  let queries;
  try {
    queries = JSON.parse(await readStdin());
  } catch (err) {
    process.stderr.write(`lint.mjs: stdin is not JSON: ${err.message}\n`);
    process.exit(2);
  }
  if (queries === null || typeof queries !== 'object' || Array.isArray(queries)) {
    process.stderr.write('lint.mjs: expected a JSON object {NAME: query}\n');
    process.exit(2);
  }
  const registry = builtInRegistry();
  if (Object.keys(registry.functions).length === 0) {
    // The fixture moved in a new version of the package: refuse rather than lint blind.
    process.stderr.write('lint.mjs: no built-in function registry found in the package\n');
    process.exit(2);
  }
  const report = {};
  for (const [name, query] of Object.entries(queries)) {
    if (typeof query !== 'string') {
      process.stderr.write(`lint.mjs: ${name} is not a string\n`);
      process.exit(2);
    }
    report[name] = lintOne(query, registry);
  }
  process.stdout.write(JSON.stringify(report, null, 1) + '\n');
}

await main();
