// Creates netprobe's topics and ACLs on the local stack's broker, idempotently.
// Run by scripts/stack with the Kafka client jars on the classpath:
//   java -cp "$KAFKA_LIB/*" KafkaSetup.java ADMIN_CLIENT_PROPERTIES TOPIC_PREFIX [--recreate]
// --recreate (only with a non-empty prefix, used by scripts/bench) deletes
// the prefixed topics first, so a run starts from empty topics.
// The admin client properties file (SASL_SSL, admin principal) is written by
// scripts/stack with mode 0600; no secret is passed on the command line.

import java.io.FileInputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
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

    public static void main(String[] args) throws Exception {
        boolean recreate = args.length == 3 && args[2].equals("--recreate");
        if (args.length != 2 && !(recreate && !args[1].isEmpty())) {
            System.err.println("usage: KafkaSetup ADMIN_CLIENT_PROPERTIES TOPIC_PREFIX [--recreate]");
            System.exit(2);
        }
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        String prefix = args[1];
        try (Admin admin = Admin.create(props)) {
            // Readiness: the broker answers an authenticated request.
            admin.describeCluster().clusterId().get(60, TimeUnit.SECONDS);
            if (recreate) {
                deleteTopics(admin, prefix);
            }
            createTopics(admin, prefix);
            createAcls(admin, prefix);
        }
        System.out.println("topics and ACLs in place");
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

    static AclBinding allow(ResourceType type, String name, PatternType pattern, String user, AclOperation op) {
        return new AclBinding(new ResourcePattern(type, name, pattern),
            new AccessControlEntry("User:" + user, "*", op, AclPermissionType.ALLOW));
    }

    static void createAcls(Admin admin, String prefix) throws Exception {
        List<AclBinding> acls = new ArrayList<>();
        for (String base : PROBE_TOPICS) {
            String topic = prefix + base;
            for (AclOperation op : List.of(AclOperation.WRITE, AclOperation.DESCRIBE)) {
                acls.add(allow(ResourceType.TOPIC, topic, PatternType.LITERAL, "agent", op));
            }
            for (String reader : List.of("ingest", "replay")) {
                for (AclOperation op : List.of(AclOperation.READ, AclOperation.DESCRIBE)) {
                    acls.add(allow(ResourceType.TOPIC, topic, PatternType.LITERAL, reader, op));
                }
            }
        }
        acls.add(allow(ResourceType.GROUP, INGEST_GROUP_PREFIX, PatternType.PREFIXED, "ingest", AclOperation.READ));
        for (AclOperation op : List.of(AclOperation.WRITE, AclOperation.DESCRIBE)) {
            acls.add(allow(ResourceType.TOPIC, prefix + DLQ, PatternType.LITERAL, "ingest", op));
        }
        // replay re-drives dead-lettered messages: it reads the DLQ, never writes it.
        for (AclOperation op : List.of(AclOperation.READ, AclOperation.DESCRIBE)) {
            acls.add(allow(ResourceType.TOPIC, prefix + DLQ, PatternType.LITERAL, "replay", op));
        }
        // Creating an ACL that exists already is a no-op.
        admin.createAcls(acls).all().get(60, TimeUnit.SECONDS);
    }
}
