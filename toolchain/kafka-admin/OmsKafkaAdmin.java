// oms-kafka-admin: the Kafka administration the kit's roles and drills need, in one JVM per call, with the Admin
// client of the pinned Kafka (toolchain/bootstrap.sh compiles it against the same jar set the brokers run).
//
//   oms-kafka-admin --config FILE health [--brokers N] [--wait SECONDS]
//   oms-kafka-admin --config FILE reconcile --desired FILE [--check] [--prune-acls]
//   oms-kafka-admin --config FILE elect-preferred
//
// --config: Admin client properties (roles/kafka renders /etc/kafka/admin.properties: the brokers' mutual-TLS
// listener and the host's keystore, whose principal is a super user). Output: one JSON document on stdout.
// Exit status: 0 ok, 1 not healthy / failed, 2 bad usage or bad input (with a message on stderr).
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

public final class OmsKafkaAdmin {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String USAGE = String.join("\n",
      "usage: oms-kafka-admin --config FILE health [--brokers N] [--wait SECONDS]",
      "       oms-kafka-admin --config FILE reconcile --desired FILE [--check] [--prune-acls]",
      "       oms-kafka-admin --config FILE elect-preferred");
  private static final ScramMechanism MECHANISM = ScramMechanism.SCRAM_SHA_512;
  private static final int SCRAM_ITERATIONS = 8192;

  /** Bad usage or bad input: exit 2 with the message. */
  static final class UsageError extends Exception {
    private static final long serialVersionUID = 1L;

    UsageError(String message) { super(message); }
  }

  public static void main(String[] argv) {
    try {
      System.exit(run(List.of(argv)));
    } catch (UsageError e) {
      System.err.println("oms-kafka-admin: " + e.getMessage());
      System.err.println(USAGE);
      System.exit(2);
    } catch (Exception e) {
      Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
      System.err.println("oms-kafka-admin: " + cause.getClass().getSimpleName() + ": " + cause.getMessage());
      System.exit(1);
    }
  }

  static int run(List<String> argv) throws Exception {
    Map<String, String> opts = new HashMap<>();
    Set<String> flags = new HashSet<>();
    List<String> positional = new ArrayList<>();
    for (int i = 0; i < argv.size(); i++) {
      String a = argv.get(i);
      switch (a) {
        case "--config", "--brokers", "--wait", "--desired" -> {
          if (i + 1 >= argv.size()) throw new UsageError(a + " needs a value");
          opts.put(a, argv.get(++i));
        }
        case "--check", "--prune-acls" -> flags.add(a);
        case "-h", "--help" -> { System.out.println(USAGE); return 0; }
        default -> {
          if (a.startsWith("-")) throw new UsageError("unknown option '" + a + "'");
          positional.add(a);
        }
      }
    }
    if (positional.size() != 1) throw new UsageError("expected one command");
    if (!opts.containsKey("--config")) throw new UsageError("--config FILE is required");
    Properties props = load(Path.of(opts.get("--config")));
    String command = positional.get(0);
    try (Admin admin = Admin.create(props)) {
      return switch (command) {
        case "health" -> health(admin, intOpt(opts, "--brokers", 0), intOpt(opts, "--wait", 0));
        case "reconcile" -> {
          if (!opts.containsKey("--desired")) throw new UsageError("reconcile needs --desired FILE");
          yield reconcile(admin, props, readDesired(Path.of(opts.get("--desired"))), flags.contains("--check"),
              flags.contains("--prune-acls"));
        }
        case "elect-preferred" -> electPreferred(admin);
        default -> throw new UsageError("unknown command '" + command + "'");
      };
    }
  }

  static int intOpt(Map<String, String> opts, String name, int fallback) throws UsageError {
    String v = opts.get(name);
    if (v == null) return fallback;
    try {
      int n = Integer.parseInt(v);
      if (n < 0) throw new NumberFormatException();
      return n;
    } catch (NumberFormatException e) {
      throw new UsageError(name + " must be a whole number >= 0, got '" + v + "'");
    }
  }

  static Properties load(Path file) throws UsageError {
    Properties p = new Properties();
    try (InputStream in = new FileInputStream(file.toFile())) {
      p.load(in);
    } catch (IOException e) {
      throw new UsageError("cannot read " + file + ": " + e.getMessage());
    }
    p.putIfAbsent("request.timeout.ms", "15000");
    p.putIfAbsent("default.api.timeout.ms", "30000");
    return p;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // health: brokers registered, controller, partitions whose in-sync replicas are fewer than their replicas

  static int health(Admin admin, int brokers, int waitSeconds) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(waitSeconds);
    while (true) {
      ObjectNode report;
      try {
        report = healthReport(admin);
      } catch (ExecutionException e) {
        report = JSON.createObjectNode().put("error", String.valueOf(e.getCause()));
      }
      boolean healthy = !report.has("error") && report.get("brokers").size() >= brokers
          && report.get("underReplicated").asInt() == 0 && report.get("offline").asInt() == 0;
      report.put("healthy", healthy);
      if (healthy || System.nanoTime() >= deadline) {
        System.out.println(report.toString());
        return healthy ? 0 : 1;
      }
      Thread.sleep(1000);
    }
  }

  static ObjectNode healthReport(Admin admin) throws Exception {
    DescribeClusterResult cluster = admin.describeCluster();
    ObjectNode out = JSON.createObjectNode();
    ArrayNode ids = out.putArray("brokers");
    cluster.nodes().get().stream().map(Node::id).sorted().forEach(ids::add);
    Node controller = cluster.controller().get();
    out.put("controller", controller == null ? -1 : controller.id());
    Set<String> names = admin.listTopics(new org.apache.kafka.clients.admin.ListTopicsOptions().listInternal(true))
        .names().get();
    Map<String, TopicDescription> topics = admin.describeTopics(names).allTopicNames().get();
    int partitions = 0, under = 0, offline = 0;
    ArrayNode details = out.putArray("notInSync");
    for (TopicDescription t : topics.values()) {
      for (TopicPartitionInfo p : t.partitions()) {
        partitions++;
        if (p.leader() == null || p.leader().isEmpty()) offline++;
        if (p.isr().size() < p.replicas().size()) {
          under++;
          if (details.size() < 20) details.add(t.name() + "-" + p.partition());
        }
      }
    }
    out.put("topics", topics.size()).put("partitions", partitions).put("underReplicated", under).put("offline", offline);
    return out;
  }

  static int electPreferred(Admin admin) throws Exception {
    var result = admin.electLeaders(ElectionType.PREFERRED, null).partitions().get();
    int moved = 0, failed = 0;
    ArrayNode errors = JSON.createArrayNode();
    for (var e : result.entrySet()) {
      if (e.getValue().isEmpty()) moved++;
      else if (!(e.getValue().get() instanceof ElectionNotNeededException)) {
        failed++;
        errors.add(e.getKey() + ": " + e.getValue().get().getMessage());
      }
    }
    ObjectNode out = JSON.createObjectNode().put("elected", moved).put("failed", failed);
    out.set("errors", errors);
    System.out.println(out.toString());
    return failed == 0 ? 0 : 1;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // reconcile: topics, SCRAM users and ACLs from a declared state (roles/kafka renders it from the inventory)

  record TopicSpec(String name, int partitions, int replicationFactor, Map<String, String> configs) {}
  record UserSpec(String name, String password) {}
  record Desired(List<TopicSpec> topics, List<UserSpec> users, Set<AclBinding> acls, String clientBootstrap) {}

  static Desired readDesired(Path file) throws UsageError {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file));
    } catch (IOException e) {
      throw new UsageError("cannot read " + file + ": " + e.getMessage());
    }
    List<TopicSpec> topics = new ArrayList<>();
    Set<String> topicNames = new HashSet<>();
    for (JsonNode t : root.path("topics")) {
      String name = text(t, "name", "topic");
      if (!topicNames.add(name)) throw new UsageError("topic '" + name + "' is declared twice");
      int partitions = t.path("partitions").asInt(0);
      int rf = t.path("replication_factor").asInt(0);
      if (partitions < 1) throw new UsageError("topic '" + name + "': partitions must be >= 1");
      if (rf < 1) throw new UsageError("topic '" + name + "': replication_factor must be >= 1");
      Map<String, String> configs = new TreeMap<>();
      t.path("configs").fields().forEachRemaining(e -> configs.put(e.getKey(), e.getValue().asText()));
      topics.add(new TopicSpec(name, partitions, rf, configs));
    }
    List<UserSpec> users = new ArrayList<>();
    Set<String> userNames = new HashSet<>();
    for (JsonNode u : root.path("users")) {
      String name = text(u, "name", "user");
      if (!userNames.add(name)) throw new UsageError("user '" + name + "' is declared twice");
      String password = text(u, "password", "user '" + name + "'");
      if (password.length() < 16) throw new UsageError("user '" + name + "': password shorter than 16 characters");
      users.add(new UserSpec(name, password));
    }
    Set<AclBinding> acls = new HashSet<>();
    for (JsonNode a : root.path("acls")) {
      String principal = text(a, "principal", "acl");
      if (!principal.startsWith("User:")) throw new UsageError("acl principal '" + principal + "' must look like User:<name>");
      ResourceType type = enumOf(ResourceType.class, text(a, "resource_type", "acl of " + principal), "resource_type");
      String name = type == ResourceType.CLUSTER ? "kafka-cluster" : text(a, "name", "acl of " + principal);
      PatternType pattern = enumOf(PatternType.class, a.path("pattern").asText("literal"), "pattern");
      if (pattern != PatternType.LITERAL && pattern != PatternType.PREFIXED) throw new UsageError("pattern must be literal or prefixed");
      AclPermissionType permission = enumOf(AclPermissionType.class, a.path("permission").asText("allow"), "permission");
      if (permission != AclPermissionType.ALLOW && permission != AclPermissionType.DENY) throw new UsageError("permission must be allow or deny");
      String host = a.path("host").asText("*");
      if (!a.path("operations").isArray() || a.path("operations").isEmpty()) throw new UsageError("acl of " + principal + " on " + name + ": operations must be a non-empty list");
      for (JsonNode op : a.path("operations")) {
        AclOperation operation = enumOf(AclOperation.class, op.asText(), "operation");
        acls.add(new AclBinding(new ResourcePattern(type, name, pattern), new AccessControlEntry(principal, host, operation, permission)));
      }
    }
    String clientBootstrap = root.path("client_bootstrap").asText("");
    if (!users.isEmpty() && clientBootstrap.isEmpty()) throw new UsageError("client_bootstrap is needed to check user passwords");
    return new Desired(topics, users, acls, clientBootstrap);
  }

  static String text(JsonNode node, String field, String what) throws UsageError {
    String v = node.path(field).asText("");
    if (v.isBlank()) throw new UsageError(what + ": '" + field + "' is missing");
    return v;
  }

  static <E extends Enum<E>> E enumOf(Class<E> type, String value, String what) throws UsageError {
    try {
      E e = Enum.valueOf(type, value.toUpperCase(Locale.ROOT).replace('-', '_'));
      if (e.name().equals("UNKNOWN") || e.name().equals("ANY")) throw new IllegalArgumentException();
      return e;
    } catch (IllegalArgumentException ex) {
      throw new UsageError(what + " '" + value + "' is not one of " + java.util.Arrays.stream(type.getEnumConstants())
          .map(c -> c.name().toLowerCase(Locale.ROOT)).filter(n -> !n.equals("unknown") && !n.equals("any"))
          .collect(Collectors.joining(", ")));
    }
  }

  static int reconcile(Admin admin, Properties adminProps, Desired desired, boolean check, boolean pruneAcls) throws Exception {
    List<String> actions = new ArrayList<>();
    List<String> drift = new ArrayList<>();
    ensureGroupCoordinator(admin, check, actions);
    reconcileTopics(admin, desired.topics(), check, actions, drift);
    reconcileUsers(admin, adminProps, desired, check, actions, drift);
    reconcileAcls(admin, desired.acls(), check, pruneAcls, actions, drift);
    ObjectNode out = JSON.createObjectNode().put("changed", !actions.isEmpty()).put("check", check);
    ArrayNode a = out.putArray("actions");
    actions.forEach(a::add);
    ArrayNode d = out.putArray("drift");
    drift.forEach(d::add);
    System.out.println(out.toString());
    return 0;
  }

  /**
   * Kafka creates its consumer offsets topic when a group coordinator is first looked up, which on a new cluster
   * makes the first consumer of a service wait (or fail) while 50 partitions are created: look one up here instead.
   */
  static void ensureGroupCoordinator(Admin admin, boolean check, List<String> actions) throws Exception {
    Set<String> internal = admin.listTopics(new org.apache.kafka.clients.admin.ListTopicsOptions().listInternal(true)).names().get();
    if (internal.contains("__consumer_offsets")) return;
    actions.add("create the consumer offsets topic (first group coordinator lookup)");
    if (!check) admin.describeConsumerGroups(List.of("oms-kafka-admin")).all().get();
  }

  static void reconcileTopics(Admin admin, List<TopicSpec> topics, boolean check, List<String> actions, List<String> drift) throws Exception {
    Set<String> existing = admin.listTopics().names().get();
    for (String name : new java.util.TreeSet<>(existing)) {
      if (topics.stream().noneMatch(t -> t.name().equals(name))) drift.add("topic " + name + " exists but is not declared (left as it is)");
    }
    List<NewTopic> create = new ArrayList<>();
    Map<String, NewPartitions> grow = new HashMap<>();
    Map<ConfigResource, Collection<AlterConfigOp>> alter = new HashMap<>();
    List<TopicSpec> present = topics.stream().filter(t -> existing.contains(t.name())).toList();
    Map<String, TopicDescription> described = present.isEmpty() ? Map.of()
        : admin.describeTopics(present.stream().map(TopicSpec::name).toList()).allTopicNames().get();
    Map<ConfigResource, Config> configs = present.isEmpty() ? Map.of()
        : admin.describeConfigs(present.stream().map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t.name())).toList()).all().get();
    for (TopicSpec t : topics) {
      if (!existing.contains(t.name())) {
        create.add(new NewTopic(t.name(), t.partitions(), (short) t.replicationFactor()).configs(t.configs()));
        actions.add("create topic " + t.name() + " (" + t.partitions() + " partitions, replication factor " + t.replicationFactor() + ")");
        continue;
      }
      TopicDescription d = described.get(t.name());
      int partitions = d.partitions().size();
      if (t.partitions() > partitions) {
        grow.put(t.name(), NewPartitions.increaseTo(t.partitions()));
        actions.add("topic " + t.name() + ": partitions " + partitions + " -> " + t.partitions());
      } else if (t.partitions() < partitions) {
        drift.add("topic " + t.name() + " has " + partitions + " partitions, " + t.partitions() + " declared (partitions are never removed)");
      }
      int rf = d.partitions().stream().mapToInt(p -> p.replicas().size()).min().orElse(0);
      if (rf != t.replicationFactor()) {
        drift.add("topic " + t.name() + " has replication factor " + rf + ", " + t.replicationFactor()
            + " declared (changing it needs a partition reassignment; not automated)");
      }
      ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, t.name());
      Config current = configs.get(res);
      List<AlterConfigOp> ops = new ArrayList<>();
      for (var e : t.configs().entrySet()) {
        ConfigEntry entry = current.get(e.getKey());
        if (entry == null) throw new UsageError("topic " + t.name() + ": unknown topic config '" + e.getKey() + "'");
        boolean setHere = entry.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG;
        if (!setHere || !e.getValue().equals(entry.value())) {
          ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SET));
          actions.add("topic " + t.name() + ": " + e.getKey() + " " + (setHere ? entry.value() : "(default " + entry.value() + ")") + " -> " + e.getValue());
        }
      }
      for (ConfigEntry entry : current.entries()) {
        if (entry.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG && !t.configs().containsKey(entry.name())) {
          drift.add("topic " + t.name() + ": " + entry.name() + "=" + entry.value() + " is set on the cluster but not declared");
        }
      }
      if (!ops.isEmpty()) alter.put(res, ops);
    }
    if (check) return;
    if (!create.isEmpty()) admin.createTopics(create).all().get();
    if (!grow.isEmpty()) admin.createPartitions(grow).all().get();
    if (!alter.isEmpty()) admin.incrementalAlterConfigs(alter).all().get();
  }

  static void reconcileUsers(Admin admin, Properties adminProps, Desired desired, boolean check, List<String> actions, List<String> drift) throws Exception {
    Map<String, UserScramCredentialsDescription> existing = admin.describeUserScramCredentials().all().get();
    Set<String> declared = desired.users().stream().map(UserSpec::name).collect(Collectors.toSet());
    for (String name : new TreeMap<>(existing).keySet()) {
      if (!declared.contains(name)) drift.add("SCRAM user " + name + " exists but is not declared (left as it is)");
    }
    List<UserScramCredentialUpsertion> upserts = new ArrayList<>();
    for (UserSpec u : desired.users()) {
      UserScramCredentialsDescription d = existing.get(u.name());
      boolean has = d != null && d.credentialInfos().stream().anyMatch(i -> i.mechanism() == MECHANISM);
      String why = !has ? "create SCRAM user " + u.name()
          : !authenticates(adminProps, desired.clientBootstrap(), u) ? "SCRAM user " + u.name() + ": password changed" : null;
      if (why != null) {
        actions.add(why);
        upserts.add(new UserScramCredentialUpsertion(u.name(), new ScramCredentialInfo(MECHANISM, SCRAM_ITERATIONS), u.password()));
      }
    }
    if (!check && !upserts.isEmpty()) admin.alterUserScramCredentials(new ArrayList<>(upserts)).all().get();
  }

  /** Whether the declared password is the one the cluster holds: SCRAM keeps only a salted hash, so try it. */
  static boolean authenticates(Properties adminProps, String clientBootstrap, UserSpec u) throws Exception {
    Properties p = new Properties();
    for (String k : adminProps.stringPropertyNames()) if (k.startsWith("ssl.")) p.put(k, adminProps.getProperty(k));
    p.put("bootstrap.servers", clientBootstrap);
    p.put("security.protocol", "SASL_SSL");
    p.put("sasl.mechanism", MECHANISM.mechanismName());
    p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
        + u.name().replace("\"", "\\\"") + "\" password=\"" + u.password().replace("\\", "\\\\").replace("\"", "\\\"") + "\";");
    p.put("request.timeout.ms", "10000");
    p.put("default.api.timeout.ms", "15000");
    try (Admin client = Admin.create(p)) {
      client.describeCluster().clusterId().get(15, TimeUnit.SECONDS);
      return true;
    } catch (ExecutionException e) {
      if (e.getCause() instanceof SaslAuthenticationException) return false;
      throw e;
    }
  }

  static void reconcileAcls(Admin admin, Set<AclBinding> desired, boolean check, boolean prune, List<String> actions, List<String> drift) throws Exception {
    Set<AclBinding> existing = new HashSet<>(admin.describeAcls(AclBindingFilter.ANY).values().get());
    List<AclBinding> add = desired.stream().filter(b -> !existing.contains(b)).sorted((x, y) -> describe(x).compareTo(describe(y))).toList();
    List<AclBinding> extra = existing.stream().filter(b -> !desired.contains(b)).sorted((x, y) -> describe(x).compareTo(describe(y))).toList();
    add.forEach(b -> actions.add("add ACL " + describe(b)));
    for (AclBinding b : extra) {
      if (prune) actions.add("remove undeclared ACL " + describe(b));
      else drift.add("ACL " + describe(b) + " exists but is not declared (left as it is; kafka_acls_prune removes it)");
    }
    if (check) return;
    if (!add.isEmpty()) admin.createAcls(add).all().get();
    if (prune && !extra.isEmpty()) admin.deleteAcls(extra.stream().map(AclBinding::toFilter).toList()).all().get();
  }

  static String describe(AclBinding b) {
    var e = b.entry();
    var r = b.pattern();
    return e.principal() + " " + e.permissionType().name().toLowerCase(Locale.ROOT) + " " + e.operation().name().toLowerCase(Locale.ROOT)
        + " on " + r.resourceType().name().toLowerCase(Locale.ROOT) + " " + r.name()
        + (r.patternType() == PatternType.PREFIXED ? "*" : "") + (e.host().equals("*") ? "" : " from " + e.host());
  }

  private OmsKafkaAdmin() {}
}
