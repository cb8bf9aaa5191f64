//! The log: topics, partitions, keys and offsets (being written).
