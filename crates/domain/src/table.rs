//! `Table`: a map for the writer's tables of one entry per person or per reservation (the people,
//! the used tickets, a clinic's reservations), where memory per person is a benchmark target
//! (issue 16). A hash table of the standard library keeps up to twice its entries' slots (it
//! doubles when seven eighths are full) and a control byte each: 1.2 to 2.3 times the entries'
//! bytes. A `Table` keeps its entries in small buckets chosen by the key's hash, each a vector
//! grown by an eighth at a time, so it holds about the entries' bytes and 2 to 3 bytes more
//! each (the buckets' headers). A lookup hashes the key and scans one bucket of at most
//! [`BUCKET_LOAD`] entries on average.
//!
//! The order of iteration is unspecified (as a hash map's): nothing decided may depend on it.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

/// The average entries per bucket at which the buckets double (between half of it and it).
pub const BUCKET_LOAD: usize = 16;

#[derive(Clone)]
pub struct Table<K, V> {
    /// A power of two of buckets (or none while empty), each unordered.
    buckets: Vec<Vec<(K, V)>>,
    len: usize,
    hasher: RandomState,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Table<K, V> {
        Table {
            buckets: Vec::new(),
            len: 0,
            hasher: RandomState::new(),
        }
    }
}

impl<K: Hash + Eq, V> Table<K, V> {
    pub fn new() -> Table<K, V> {
        Table::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bucket_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        (self.hasher.hash_one(key) as usize) & (self.buckets.len() - 1)
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (b, at) = self.slot_of(key)?;
        Some(&self.buckets[b][at].1)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (b, at) = self.slot_of(key)?;
        Some(&mut self.buckets[b][at].1)
    }

    /// The bucket and the index in it of `key`'s entry.
    fn slot_of<Q>(&self, key: &Q) -> Option<(usize, usize)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.buckets.is_empty() {
            return None;
        }
        let b = self.bucket_of(key);
        let at = self.buckets[b]
            .iter()
            .position(|(k, _)| k.borrow() == key)?;
        Some((b, at))
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(old) = self.get_mut(&key) {
            return Some(std::mem::replace(old, value));
        }
        self.push_new(key, value);
        None
    }

    /// The value of `key`, made with `V::default()` if it had none.
    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let found = (!self.buckets.is_empty())
            .then(|| {
                let b = self.bucket_of(&key);
                let at = self.buckets[b].iter().position(|(k, _)| *k == key)?;
                Some((b, at))
            })
            .flatten();
        let (b, at) = match found {
            Some(place) => place,
            None => self.push_new(key, V::default()),
        };
        &mut self.buckets[b][at].1
    }

    /// Adds an entry whose key is not in the table; where it went.
    fn push_new(&mut self, key: K, value: V) -> (usize, usize) {
        if self.len >= self.buckets.len() * BUCKET_LOAD {
            self.grow();
        }
        let b = self.bucket_of(&key);
        let bucket = &mut self.buckets[b];
        if bucket.len() == bucket.capacity() {
            bucket.reserve_exact(bucket.len() / 8 + 1);
        }
        bucket.push((key, value));
        self.len += 1;
        (b, bucket.len() - 1)
    }

    /// Twice the buckets (one to begin with), each made as large as its entries.
    fn grow(&mut self) {
        let count = (self.buckets.len() * 2).max(1);
        let old = std::mem::take(&mut self.buckets);
        let mut sizes = vec![0usize; count];
        for (k, _) in old.iter().flatten() {
            sizes[(self.hasher.hash_one(k) as usize) & (count - 1)] += 1;
        }
        self.buckets = sizes.into_iter().map(Vec::with_capacity).collect();
        for (k, v) in old.into_iter().flatten() {
            let b = self.bucket_of(&k);
            self.buckets[b].push((k, v));
        }
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (b, at) = self.slot_of(key)?;
        let bucket = &mut self.buckets[b];
        let (_, value) = bucket.swap_remove(at);
        Self::fit(bucket);
        self.len -= 1;
        Some(value)
    }

    /// Keeps the entries `keep` is true of.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for bucket in &mut self.buckets {
            bucket.retain_mut(|(k, v)| keep(k, v));
            Self::fit(bucket);
        }
        self.len = self.buckets.iter().map(Vec::len).sum();
    }

    /// A bucket left with more than a quarter of its room empty gives it back.
    fn fit(bucket: &mut Vec<(K, V)>) {
        if bucket.capacity() > bucket.len() + bucket.len() / 4 + 1 {
            bucket.shrink_to(bucket.len() + bucket.len() / 8);
        }
    }

    /// Room for `more` entries without doubling the buckets.
    pub fn reserve(&mut self, more: usize) {
        let wanted = self.len + more;
        while self.buckets.len() * BUCKET_LOAD < wanted {
            self.grow();
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.buckets.iter().flatten().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: Hash + Eq, V: PartialEq> PartialEq for Table<K, V> {
    fn eq(&self, other: &Table<K, V>) -> bool {
        self.len == other.len && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<K: Hash + Eq, V: Eq> Eq for Table<K, V> {}

impl<K: Hash + Eq + std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K, Q, V> std::ops::Index<&Q> for Table<K, V>
where
    K: Hash + Eq + Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key in the table")
    }
}

impl<'a, K: Hash + Eq, V> IntoIterator for &'a Table<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Box<dyn Iterator<Item = (&'a K, &'a V)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Against the standard library's map, through growth, removals and retains.
    #[test]
    fn a_table_is_a_map() {
        let mut table: Table<u64, u64> = Table::new();
        let mut map: HashMap<u64, u64> = HashMap::new();
        let mut x = 7u64;
        for step in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = (x >> 33) % 5_000;
            match step % 7 {
                0..=2 => assert_eq!(table.insert(key, step), map.insert(key, step)),
                3 => assert_eq!(table.remove(&key), map.remove(&key)),
                4 => *table.get_or_default(key) += 1,
                5 if step % 1_000 == 5 => {
                    table.retain(|k, _| k % 3 != 0);
                    map.retain(|k, _| k % 3 != 0);
                }
                _ => assert_eq!(table.get(&key), map.get(&key)),
            }
            if step % 7 == 4 {
                *map.entry(key).or_default() += 1;
            }
            assert_eq!(table.len(), map.len());
        }
        let mut all: Vec<_> = table.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort();
        let mut expected: Vec<_> = map.into_iter().collect();
        expected.sort();
        assert_eq!(all, expected);
        assert_eq!(table, table.clone());
    }
}
