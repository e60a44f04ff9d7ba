//! Picks a message's partition from the agent part of its key, so all of
//! one agent's messages on a topic go to one partition.
//!
//! librdkafka sends one ProduceRequest per partition (librdkafka issue
//! #1700: no multi-partition requests as of 2.12). Spread by the whole key
//! `probe_id/target` over a probe topic's 6 partitions, an agent at 1,000
//! results/s sent 6 TLS requests per linger instead of 1: its broker thread
//! was a quarter of its CPU, and the whole agent went from 63.4 to 46.0 µs
//! per probe with one partition (docs/agent.md, "Third pass").
//!
//! DESIGN.md asks that one target's results stay ordered on one partition;
//! that holds, as the partition is a function of the key alone. Across
//! agents the hash spreads the load, so ingest instances still share the
//! partitions once there are several agents per partition (docs/ingest.md,
//! "Sizing").
//!
//! The hash is Kafka's default murmur2 (Java client `Utils.murmur2`,
//! librdkafka's `murmur2` partitioner) of the bytes before the first `/` (the
//! whole key when there is none): the partition a Java producer would pick
//! for the key `probe_id`.

use rdkafka::producer::Partitioner;

/// [`Partitioner`] by the agent part of the key (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct ByAgent;

impl Partitioner for ByAgent {
    fn partition(&self, _topic: &str, key: Option<&[u8]>, partition_cnt: i32, _: impl Fn(i32) -> bool) -> i32 {
        partition_of(key.unwrap_or_default(), partition_cnt)
    }
}

/// The partition of `key` among `partition_cnt` (> 0; 0 is returned
/// otherwise): `(murmur2(agent part) & 0x7fffffff) % partition_cnt`.
pub fn partition_of(key: &[u8], partition_cnt: i32) -> i32 {
    let agent = key.split(|&b| b == b'/').next().unwrap_or_default();
    let positive = (murmur2(agent) & 0x7fff_ffff) as i32;
    if partition_cnt > 0 {
        positive % partition_cnt
    } else {
        0
    }
}

/// MurmurHash2, 32 bits, seed `0x9747b28c`, as Kafka's Java client
/// (`org.apache.kafka.common.utils.Utils.murmur2`) computes it.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache Kafka's `UtilsTest.testMurmur2` vectors (Java signed ints).
    #[test]
    fn murmur2_matches_kafkas_java_client() {
        let cases: [(&[u8], i32); 7] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
            // kafka-python's murmur2, for the one-byte tail the Java set lacks.
            (b"string-fo-25-chars-length", 1_269_511_650),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input) as i32, want, "murmur2({:?})", String::from_utf8_lossy(input));
        }
    }

    /// Partitions of `agent/...` keys as kafka-python 2.x's default
    /// partitioner computes them for the key `agent` (`(murmur2(key) &
    /// 0x7fffffff) % n`, run by hand), covering every length mod 4 and the
    /// empty agent part.
    #[test]
    fn partition_matches_kafka_python_for_the_agent_part() {
        let cases: [(&str, [i32; 3]); 6] = [
            ("p", [2, 4, 2]),
            ("abc", [3, 4, 27]),
            ("pop-fra-01", [5, 5, 17]),
            ("pop-fra-01x", [3, 0, 5]),
            ("string-fo-25-chars-length", [0, 1, 34]),
            ("", [3, 2, 25]),
        ];
        for (agent, want) in cases {
            for (cnt, want) in [6, 7, 64].into_iter().zip(want) {
                let key = format!("{agent}/10.0.0.1");
                assert_eq!(partition_of(key.as_bytes(), cnt), want, "key {key:?}, {cnt} partitions");
            }
        }
    }

    #[test]
    fn every_key_of_one_agent_lands_on_one_partition() {
        let keys = ["pop-1", "pop-1/icmp", "pop-1/10.0.0.1", "pop-1/1.1.1.1/example.com/A", "pop-1/https://x/"];
        let first = partition_of(keys[0].as_bytes(), 6);
        for k in keys {
            assert_eq!(partition_of(k.as_bytes(), 6), first, "{k}");
        }
        assert_eq!(partition_of(b"pop-1", 0), 0);
    }
}
