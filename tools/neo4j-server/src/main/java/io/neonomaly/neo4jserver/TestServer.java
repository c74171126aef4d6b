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
import org.neo4j.io.ByteUnit;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

/**
 * A real Neo4j DBMS for tests and benchmarks: Bolt on 127.0.0.1 at a free port, authentication
 * on, data in a temporary directory that is deleted on exit.
 *
 * <p>Prints {@code NEO4J_URI=bolt://127.0.0.1:PORT} and {@code NEO4J_USER=neo4j} once Bolt
 * accepts connections (and {@code NEO4J_PASSWORD=...} when it generated the password). The
 * password comes from the NEO4J_PASSWORD environment variable (at least 8 characters) or is
 * generated. Stops cleanly on SIGTERM / SIGINT, and by itself when the process that started
 * it dies, so that a killed test run leaves no server behind.
 */
public final class TestServer {
  private static final long PARENT_POLL_MILLIS = 500;

  public static void main(String[] args) throws Exception {
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

    Path home = Files.createTempDirectory("neonomaly-neo4j-");
    DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home);
    if (!checkpointSeconds.isEmpty()) {
      builder.setConfig(
          GraphDatabaseSettings.check_point_interval_time,
          Duration.ofSeconds(Long.parseLong(checkpointSeconds)));
    }
    DatabaseManagementService dbms =
        builder
            .setConfig(BoltConnector.enabled, true)
            .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", 0))
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
                  deleteRecursively(home);
                },
                "neo4j-test-server-shutdown"));

    // The initial user must change its password on first login; set it here, as
    // `neo4j-admin dbms set-initial-password` would, so clients can log in at once.
    dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME)
        .executeTransactionally(
            "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
            Map.of("password", password));

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
    System.out.flush();

    watchParent();
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
