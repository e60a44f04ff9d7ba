// Creates netprobe's topics and ACLs on the local stack's broker, idempotently,
// and returns only once they are in effect for every principal.
// Run by scripts/stack with the Kafka client jars on the classpath:
//   java -cp "$KAFKA_LIB/*" KafkaSetup.java ADMIN_CLIENT_PROPERTIES TOPIC_PREFIX [--recreate|--delete]
// --recreate (only with a non-empty prefix, used by scripts/bench) deletes
// the prefixed topics first, so a run starts from empty topics.
// --delete (only with a non-empty prefix, used by tests to clean up) deletes
// the prefixed topics and their ACLs, and nothing else.
//
// "In place" means in effect, not merely accepted: the controller commits
// topics and ACLs at once, but the broker applies them from its metadata log
// a moment later, and a client that acts in between is refused
// (TopicAuthorizationFailed on a first produce, UnknownTopicOrPartition, no
// leader). So after creating them, each principal (agent, ingest, replay)
// connects with its own SCRAM credentials and asks the broker which
// operations it may perform on each of its topics (and ingest on its
// consumer group), until every grant below is visible and every partition
// has a leader, within NETPROBE_STACK_TIMEOUT_S (default 120) seconds;
// otherwise it exits non-zero naming what is missing.
//
// The admin client properties file (SASL_SSL, admin principal) is written by
// scripts/stack with mode 0600; the principals' passwords are read from
// NETPROBE_STACK_SECRETS/kafka-USER.password. No secret is passed on the
// command line.

import java.io.FileInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;

public class KafkaSetup {
    static final List<String> PROBE_TOPICS = List.of(
        "icmp.metrics", "dns.metrics", "http.metrics", "mtr.metrics",
        "bgp.updates", "agent.registry", "probe.health");
    static final String DLQ = "ingest.dlq";
    static final int PARTITIONS = 6;
    /** Largest message a topic accepts: ingest's DLQ must take any message a probe topic took. */
    static final String MAX_MESSAGE_BYTES = "10485760";
    /** Consumer groups of ingest start with this (tests add a suffix). */
    static final String INGEST_GROUP_PREFIX = "netprobe-ingest";
    /** The group ingest's readiness check asks about (covered by the prefixed ACL, never joined). */
    static final String INGEST_PROBE_GROUP = INGEST_GROUP_PREFIX + "-stack-readiness";

    /** One principal's operations on one resource (literal topic or prefixed group). */
    record Grant(String user, ResourceType type, String name, PatternType pattern, Set<AclOperation> ops) {}

    public static void main(String[] args) throws Exception {
        String mode = args.length == 3 ? args[2] : "";
        boolean modeOk = mode.isEmpty() || mode.equals("--recreate") || mode.equals("--delete");
        if (args.length < 2 || args.length > 3 || !modeOk || (!mode.isEmpty() && args[1].isEmpty())) {
            System.err.println("usage: KafkaSetup ADMIN_CLIENT_PROPERTIES TOPIC_PREFIX [--recreate|--delete]"
                + " (--recreate and --delete need a non-empty prefix)");
            System.exit(2);
        }
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        String prefix = args[1];
        long deadlineNs = System.nanoTime()
            + TimeUnit.SECONDS.toNanos(Long.parseLong(envOr("NETPROBE_STACK_TIMEOUT_S", "120")));
        List<Grant> grants = grants(prefix);
        try (Admin admin = Admin.create(props)) {
            // Readiness: the broker answers an authenticated request.
            admin.describeCluster().clusterId().get(60, TimeUnit.SECONDS);
            if (mode.equals("--delete")) {
                deleteTopics(admin, prefix);
                deleteAcls(admin, prefix);
                System.out.println("topics and ACLs under " + prefix + " deleted");
                return;
            }
            if (mode.equals("--recreate")) {
                deleteTopics(admin, prefix);
            }
            createTopics(admin, prefix);
            createAcls(admin, grants);
        }
        String secrets = System.getenv("NETPROBE_STACK_SECRETS");
        if (secrets == null || secrets.isEmpty()) {
            throw new IllegalStateException("NETPROBE_STACK_SECRETS is not set (scripts/stack sets it)");
        }
        awaitInEffect(props, Path.of(secrets), grants, deadlineNs);
        System.out.println("topics and ACLs in place and in effect for every principal");
    }

    static String envOr(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }

    static List<String> topicNames(String prefix) {
        List<String> names = new ArrayList<>();
        for (String base : PROBE_TOPICS) {
            names.add(prefix + base);
        }
        names.add(prefix + DLQ);
        return names;
    }

    /** Every grant of the stack for topics under `prefix`: each principal gets only its ACLs. */
    static List<Grant> grants(String prefix) {
        Set<AclOperation> write = EnumSet.of(AclOperation.WRITE, AclOperation.DESCRIBE);
        Set<AclOperation> read = EnumSet.of(AclOperation.READ, AclOperation.DESCRIBE);
        List<Grant> g = new ArrayList<>();
        for (String base : PROBE_TOPICS) {
            String topic = prefix + base;
            g.add(new Grant("agent", ResourceType.TOPIC, topic, PatternType.LITERAL, write));
            g.add(new Grant("ingest", ResourceType.TOPIC, topic, PatternType.LITERAL, read));
            g.add(new Grant("replay", ResourceType.TOPIC, topic, PatternType.LITERAL, read));
        }
        g.add(new Grant("ingest", ResourceType.GROUP, INGEST_GROUP_PREFIX, PatternType.PREFIXED,
            EnumSet.of(AclOperation.READ)));
        g.add(new Grant("ingest", ResourceType.TOPIC, prefix + DLQ, PatternType.LITERAL, write));
        // replay re-drives dead-lettered messages: it reads the DLQ, never writes it.
        g.add(new Grant("replay", ResourceType.TOPIC, prefix + DLQ, PatternType.LITERAL, read));
        return g;
    }

    static void deleteTopics(Admin admin, String prefix) throws Exception {
        List<String> doomed = new ArrayList<>();
        for (String name : admin.listTopics().names().get(30, TimeUnit.SECONDS)) {
            if (name.startsWith(prefix)) {
                doomed.add(name);
            }
        }
        admin.deleteTopics(doomed).all().get(60, TimeUnit.SECONDS);
        // Deletion is asynchronous: wait until the names are gone.
        for (int i = 0; i < 600; i++) {
            Set<String> left = admin.listTopics().names().get(30, TimeUnit.SECONDS);
            if (doomed.stream().noneMatch(left::contains)) {
                return;
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("topics not deleted within 60 s: " + doomed);
    }

    /** Deletes every ACL on the topics under `prefix` (the group ACL is shared and stays). */
    static void deleteAcls(Admin admin, String prefix) throws Exception {
        List<AclBindingFilter> filters = new ArrayList<>();
        for (String topic : topicNames(prefix)) {
            filters.add(new AclBindingFilter(
                new ResourcePatternFilter(ResourceType.TOPIC, topic, PatternType.LITERAL),
                AccessControlEntryFilter.ANY));
        }
        admin.deleteAcls(filters).all().get(60, TimeUnit.SECONDS);
    }

    static void createTopics(Admin admin, String prefix) throws Exception {
        Set<String> existing = admin.listTopics().names().get(30, TimeUnit.SECONDS);
        List<NewTopic> wanted = new ArrayList<>();
        for (String base : PROBE_TOPICS) {
            String policy = base.equals("agent.registry") ? "compact" : "delete";
            wanted.add(new NewTopic(prefix + base, PARTITIONS, (short) 1)
                .configs(Map.of("cleanup.policy", policy, "max.message.bytes", MAX_MESSAGE_BYTES)));
        }
        wanted.add(new NewTopic(prefix + DLQ, PARTITIONS, (short) 1)
            .configs(Map.of("max.message.bytes", MAX_MESSAGE_BYTES)));
        wanted.removeIf(t -> existing.contains(t.name()));
        if (!wanted.isEmpty()) {
            admin.createTopics(wanted).all().get(60, TimeUnit.SECONDS);
        }
    }

    static void createAcls(Admin admin, List<Grant> grants) throws Exception {
        List<AclBinding> acls = new ArrayList<>();
        for (Grant g : grants) {
            for (AclOperation op : g.ops()) {
                acls.add(new AclBinding(new ResourcePattern(g.type(), g.name(), g.pattern()),
                    new AccessControlEntry("User:" + g.user(), "*", op, AclPermissionType.ALLOW)));
            }
        }
        // Creating an ACL that exists already is a no-op.
        admin.createAcls(acls).all().get(60, TimeUnit.SECONDS);
    }

    /** The admin client's settings with `user`'s SCRAM credentials instead. */
    static Properties clientFor(Properties admin, Path secrets, String user) throws Exception {
        String password = Files.readString(secrets.resolve("kafka-" + user + ".password")).strip();
        Properties p = new Properties();
        p.putAll(admin);
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
            + user + "\" password=\"" + password + "\";");
        p.put("client.id", "netprobe-stack-readiness-" + user);
        return p;
    }

    /**
     * Polls, as each principal, until every grant is in effect and every
     * partition of its topics has a leader; throws naming what is still
     * missing once the deadline passes.
     */
    static void awaitInEffect(Properties adminProps, Path secrets, List<Grant> grants, long deadlineNs)
        throws Exception {
        Map<String, List<Grant>> byUser = new LinkedHashMap<>();
        for (Grant g : grants) {
            byUser.computeIfAbsent(g.user(), u -> new ArrayList<>()).add(g);
        }
        long started = System.nanoTime();
        for (Map.Entry<String, List<Grant>> e : byUser.entrySet()) {
            String user = e.getKey();
            try (Admin client = Admin.create(clientFor(adminProps, secrets, user))) {
                List<String> missing = missing(client, e.getValue());
                while (!missing.isEmpty()) {
                    if (System.nanoTime() > deadlineNs) {
                        throw new IllegalStateException("ACLs not in effect for principal " + user + " within "
                            + TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started) + " s: " + missing);
                    }
                    Thread.sleep(100);
                    missing = missing(client, e.getValue());
                }
            }
        }
        System.err.printf("[stack] topics and ACLs in effect for %s after %d ms%n", byUser.keySet(),
            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
    }

    /** What `client`'s principal cannot do yet, one line per resource; empty when all is in effect. */
    static List<String> missing(Admin client, List<Grant> grants) throws Exception {
        List<String> out = new ArrayList<>();
        for (Grant g : grants) {
            Set<AclOperation> have;
            try {
                have = authorized(client, g, out);
            } catch (ExecutionException ex) {
                // Not visible yet: UnknownTopicOrPartition, TopicAuthorizationFailed,
                // GroupAuthorizationFailed, coordinator not available, ...
                out.add(g.type() + " " + g.name() + ": " + ex.getCause().getClass().getSimpleName());
                continue;
            }
            if (have == null || !have.containsAll(g.ops())) {
                Set<String> lacking = new TreeSet<>();
                for (AclOperation op : g.ops()) {
                    if (have == null || !have.contains(op)) {
                        lacking.add(op.name());
                    }
                }
                out.add(g.type() + " " + g.name() + ": lacks " + lacking);
            }
        }
        return out;
    }

    /** The operations the broker grants the client's principal on the grant's resource (topics: also leaders). */
    static Set<AclOperation> authorized(Admin client, Grant g, List<String> problems) throws Exception {
        if (g.type() == ResourceType.GROUP) {
            // The group's authorized operations can only be described once the
            // group exists; fetching its (absent) offsets needs DESCRIBE on it,
            // which ingest holds only through this READ grant.
            client.listConsumerGroupOffsets(INGEST_PROBE_GROUP,
                    new ListConsumerGroupOffsetsOptions().timeoutMs(10_000))
                .partitionsToOffsetAndMetadata().get(15, TimeUnit.SECONDS);
            return g.ops();
        }
        TopicDescription d = client.describeTopics(List.of(g.name()),
                new DescribeTopicsOptions().includeAuthorizedOperations(true).timeoutMs(10_000))
            .allTopicNames().get(15, TimeUnit.SECONDS).get(g.name());
        int led = 0;
        for (TopicPartitionInfo p : d.partitions()) {
            if (p.leader() != null && !p.leader().isEmpty()) {
                led++;
            }
        }
        if (led < PARTITIONS) {
            problems.add("TOPIC " + g.name() + ": " + led + " of " + PARTITIONS + " partitions have a leader");
        }
        return d.authorizedOperations();
    }
}
