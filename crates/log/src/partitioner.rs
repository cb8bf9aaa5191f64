//! Key to partition mapping, identical to Apache Kafka's default partitioner for keyed records.
//!
//! Kafka's producer (`BuiltInPartitioner.partitionForKey`) computes
//! `Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions`. This module reproduces that
//! computation bit for bit, so a key lands in the same partition whether the ledger runs on the
//! embedded file log or on a Kafka cluster.
//!
//! Only *keyed* records are covered. Kafka sends records with a `null` key to a "sticky"
//! partition; yeyak has no such thing: every record has a key, and an empty key is hashed like
//! any other byte string (as Kafka does for a non-null empty `byte[]`).

// Do not change: this hash decides which partition owns a key, and must agree with Kafka's.
const MURMUR2_SEED: u32 = 0x9747_b28c;
const MURMUR2_M: u32 = 0x5bd1_e995;
const MURMUR2_R: u32 = 24;

/// Kafka's `Utils.murmur2`, returned as Java's signed `int`.
///
/// Java's `int` arithmetic wraps on overflow and `>>>` is a logical shift, which is exactly
/// wrapping `u32` arithmetic with `>>`; the bits are reinterpreted as `i32` at the end.
pub fn murmur2(data: &[u8]) -> i32 {
    // Do not change: this hash decides which partition owns a key, and must agree with Kafka's.
    let length = data.len();
    // Java: `int h = seed ^ length;` (`length` is an int; keys longer than 2 GiB do not exist here).
    let mut h: u32 = MURMUR2_SEED ^ (length as u32);

    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(MURMUR2_M);
        k ^= k >> MURMUR2_R;
        k = k.wrapping_mul(MURMUR2_M);
        h = h.wrapping_mul(MURMUR2_M);
        h ^= k;
    }

    // Java's `switch (length % 4)` with fall-through.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(MURMUR2_M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR2_M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (this is not `abs`).
pub fn to_positive(x: i32) -> u32 {
    (x as u32) & 0x7fff_ffff
}

/// The partition that owns `key` among `partitions` partitions, exactly as Kafka's default
/// partitioner picks it for a keyed record.
///
/// `partitions == 0` is not a valid topic (topics have at least one partition); rather than
/// panic on a division by zero, it returns 0.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    if partitions == 0 {
        return 0;
    }
    to_positive(murmur2(key)) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Apache Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafka_utils_test_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key),
                *expected,
                "murmur2({:?})",
                String::from_utf8_lossy(key)
            );
        }
    }

    /// The empty key is hashed like any other byte string (Kafka does the same for a non-null
    /// empty `byte[]`). The value was computed with an independent transcription of the Java
    /// code, not taken from Kafka's test suite.
    #[test]
    fn empty_key_is_hashed_not_special_cased() {
        assert_eq!(murmur2(b""), 275_646_681);
        assert_eq!(partition_for_key(b"", 12), 275_646_681 % 12);
        assert_eq!(partition_for_key(b"", 1), 0);
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(-1), 0x7fff_ffff);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(i32::MAX), 0x7fff_ffff);
        assert_eq!(to_positive(-790_332_482), 1_357_151_166);
    }

    #[test]
    fn partition_for_key_is_to_positive_murmur2_mod_n() {
        // toPositive(murmur2) for the Kafka vectors, reduced by hand modulo 12 and 100.
        assert_eq!(partition_for_key(b"21", 12), 1_173_551_340 % 12);
        assert_eq!(partition_for_key(b"foobar", 12), 6);
        assert_eq!(partition_for_key(b"foobar", 100), 66);
        assert_eq!(partition_for_key(b"a-little-bit-long-string", 12), 8);
        assert_eq!(partition_for_key(b"a-little-bit-longer-string", 100), 19);
        assert_eq!(partition_for_key(b"abc", 12), 3);
        assert_eq!(partition_for_key(b"abc", 1), 0);
    }

    #[test]
    fn zero_partitions_does_not_panic() {
        assert_eq!(partition_for_key(b"abc", 0), 0);
    }
}
