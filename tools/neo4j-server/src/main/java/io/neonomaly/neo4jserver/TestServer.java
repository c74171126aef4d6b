package io.neonomaly.neo4jserver;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.Map;
import java.util.stream.Stream;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.QueryExecutionException;
import org.neo4j.io.ByteUnit;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

/**
 * A real Neo4j DBMS (Neo4j's own Community edition, from Maven Central) for tests, benchmarks
 * and development: Bolt on 127.0.0.1, authentication on.
 *
 * <p>By default, for the test suite: Bolt at a free port, data in a temporary directory that
 * is deleted on exit, and the server stops by itself when the process that started it dies,
 * so that a killed test run leaves no server behind. As a development server (README, "Run it
 * on Neo4j without Docker"): {@code --port 7687} for a fixed port, {@code --data DIR} for a
 * database kept in DIR across runs, {@code --stay} to keep running when the shell that
 * started it exits.
 *
 * <p>Prints {@code NEO4J_URI=bolt://127.0.0.1:PORT} and {@code NEO4J_USER=neo4j} once Bolt
 * accepts connections (and {@code NEO4J_PASSWORD=...} when it generated the password). The
 * password comes from the NEO4J_PASSWORD environment variable (at least 8 characters) or is
 * generated, and is set at every start. Stops cleanly on SIGTERM / SIGINT.
 */
public final class TestServer {
  private static final long PARENT_POLL_MILLIS = 500;
  private static final String USAGE =
      "usage: java -jar neo4j-test-server.jar [--port PORT] [--data DIR] [--stay]";

  /** What the command line asked for. */
  private record Options(int port, Path data, boolean stay) {
    static Options parse(String[] args) {
      int port = 0;
      Path data = null;
      boolean stay = false;
      for (int i = 0; i < args.length; i++) {
        switch (args[i]) {
          case "--port" -> port = Integer.parseInt(value(args, ++i));
          case "--data" -> data = Path.of(value(args, ++i)).toAbsolutePath();
          case "--stay" -> stay = true;
          default -> throw new IllegalArgumentException("unknown argument " + args[i]);
        }
      }
      if (port < 0 || port > 65535) {
        throw new IllegalArgumentException("--port must be 0 to 65535, got " + port);
      }
      return new Options(port, data, stay);
    }

    private static String value(String[] args, int i) {
      if (i >= args.length) {
        throw new IllegalArgumentException(args[i - 1] + " needs a value");
      }
      return args[i];
    }
  }

  public static void main(String[] args) throws Exception {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage() + "\n" + USAGE);
      System.exit(2);
      return;
    }
    String password = System.getenv("NEO4J_PASSWORD");
    boolean generated = password == null || password.isEmpty();
    if (generated) {
      byte[] bytes = new byte[16];
      new SecureRandom().nextBytes(bytes);
      password = HexFormat.of().formatHex(bytes);
    } else if (password.length() < 8) {
      System.err.println("NEO4J_PASSWORD must be at least 8 characters (Neo4j's minimum)");
      System.exit(2);
    }
    long pageCacheMiB = Long.parseLong(envOr("NEO4J_PAGECACHE_MIB", "128"));

    // A benchmark that measures the store's files on disk wants them flushed (Community has
    // no db.checkpoint()): a checkpoint every that many seconds. Default: Neo4j's own.
    String checkpointSeconds = envOr("NEO4J_CHECKPOINT_SECONDS", "");

    boolean temporary = options.data() == null;
    Path home = temporary ? Files.createTempDirectory("neonomaly-neo4j-") : options.data();
    Files.createDirectories(home);
    DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home);
    if (!checkpointSeconds.isEmpty()) {
      builder.setConfig(
          GraphDatabaseSettings.check_point_interval_time,
          Duration.ofSeconds(Long.parseLong(checkpointSeconds)));
    }
    DatabaseManagementService dbms =
        builder
            .setConfig(BoltConnector.enabled, true)
            .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", options.port()))
            .setConfig(GraphDatabaseSettings.auth_enabled, true)
            // Usage reports would phone home from every test run.
            .setConfig(GraphDatabaseSettings.udc_enabled, false)
            .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(pageCacheMiB))
            // No space preallocated for transaction logs: a test database is small.
            .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
            .build();
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  dbms.shutdown();
                  if (temporary) {
                    deleteRecursively(home);
                  }
                },
                "neo4j-test-server-shutdown"));

    try {
      announce(dbms, password, generated, temporary ? null : home);
    } catch (RuntimeException e) {
      // The DBMS's threads would keep a half-started server alive: end it, with the cause.
      e.printStackTrace();
      System.exit(1);
    }

    if (options.stay()) {
      Thread.currentThread().join(); // until SIGTERM / SIGINT runs the shutdown hook
    }
    watchParent();
  }

  /** Sets the password, then prints where Bolt listens once it accepts connections. */
  private static void announce(
      DatabaseManagementService dbms, String password, boolean generated, Path keptData) {
    setPassword(dbms, password);
    GraphDatabaseAPI db = (GraphDatabaseAPI) dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
    var bolt =
        db.getDependencyResolver()
            .resolveDependency(ConnectorPortRegister.class)
            .getLocalAddress(ConnectorType.BOLT);
    System.out.println("NEO4J_URI=bolt://127.0.0.1:" + bolt.getPort());
    System.out.println("NEO4J_USER=neo4j");
    if (generated) {
      System.out.println("NEO4J_PASSWORD=" + password);
    }
    if (keptData != null) {
      System.out.println("NEO4J_DATA=" + keptData);
    }
    System.out.flush();
  }

  /**
   * The initial user must change its password on first login; set it here, as {@code
   * neo4j-admin dbms set-initial-password} would, so clients can log in at once.
   */
  private static void setPassword(DatabaseManagementService dbms, String password) {
    try {
      dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME)
          .executeTransactionally(
              "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
              Map.of("password", password));
    } catch (QueryExecutionException e) {
      // Neo4j refuses a password equal to the current one: a kept database started again
      // with the same NEO4J_PASSWORD already has it.
      if (e.getMessage() == null || !e.getMessage().contains("cannot be the same")) {
        throw e;
      }
    }
  }

  /** Blocks until the parent process is gone, then exits (running the shutdown hook). */
  private static void watchParent() throws InterruptedException {
    var parent = ProcessHandle.current().parent().orElse(null);
    while (parent != null && parent.isAlive()) {
      Thread.sleep(PARENT_POLL_MILLIS);
    }
    System.exit(0);
  }

  private static String envOr(String name, String fallback) {
    String value = System.getenv(name);
    return value == null || value.isEmpty() ? fallback : value;
  }

  private static void deleteRecursively(Path root) {
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(TestServer::deleteQuietly);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void deleteQuietly(Path path) {
    try {
      Files.deleteIfExists(path);
    } catch (IOException e) {
      // A file still held open is left for the OS's temp cleaner; nothing to do about it.
    }
  }
}
