//! [`KeyTable`]: the live keys of a keyed service and the two bounds on them: how many keys get
//! a supervisor of their own, and how many get metric series of their own. Pure: it holds
//! whatever value the engine gives it per key, and knows nothing of actors or clocks (the
//! caller says which values are idle).

use std::collections::HashMap;

use super::KeyedConfig;

/// Where a key that is not in the table goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A slot of its own; `labeled`: with its own metric series.
    New { labeled: bool },
    /// Every slot is taken: the shared overflow.
    Overflow,
}

/// One live key's value, and whether it has its own metric series.
#[derive(Debug)]
pub(crate) struct Keyed<V> {
    pub(crate) value: V,
    pub(crate) labeled: bool,
}

/// The live keys, at most `max_keys` of them, `labeled_keys` of which are labeled.
#[derive(Debug)]
pub(crate) struct KeyTable<V> {
    entries: HashMap<Box<str>, Keyed<V>>,
    labeled: u32,
    max_keys: u32,
    labeled_keys: u32,
}

impl<V> KeyTable<V> {
    /// An empty table with the bounds of `config`.
    pub(crate) fn new(config: &KeyedConfig) -> Self {
        KeyTable {
            entries: HashMap::new(),
            labeled: 0,
            max_keys: config.max_keys,
            labeled_keys: config.labeled_keys,
        }
    }

    /// New bounds: they apply to keys placed from now on (no live key is dropped for them).
    pub(crate) fn set_bounds(&mut self, config: &KeyedConfig) {
        self.max_keys = config.max_keys;
        self.labeled_keys = config.labeled_keys;
    }

    /// The live key `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Keyed<V>> {
        self.entries.get(key)
    }

    /// Where a new key would go now.
    pub(crate) fn place(&self) -> Place {
        if self.entries.len() >= self.max_keys as usize {
            Place::Overflow
        } else {
            Place::New {
                labeled: self.labeled < self.labeled_keys,
            }
        }
    }

    /// Adds `key` where [`place`](Self::place) puts it (`None` when it goes to the overflow),
    /// replacing the value of a key that is already there (keeping its label).
    pub(crate) fn insert(&mut self, key: &str, value: V) -> Option<&Keyed<V>> {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.value = value;
            return self.entries.get(key);
        }
        let Place::New { labeled } = self.place() else {
            return None;
        };
        self.labeled += u32::from(labeled);
        self.entries.insert(key.into(), Keyed { value, labeled });
        self.entries.get(key)
    }

    /// Drops `key`, freeing its slot and its label.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Keyed<V>> {
        let entry = self.entries.remove(key)?;
        self.labeled -= u32::from(entry.labeled);
        Some(entry)
    }

    /// Drops every key whose value `idle` says is idle, and hands them back.
    pub(crate) fn evict(&mut self, mut idle: impl FnMut(&V) -> bool) -> Vec<(Box<str>, Keyed<V>)> {
        let keys: Vec<Box<str>> = self
            .entries
            .iter()
            .filter(|(_, entry)| idle(&entry.value))
            .map(|(key, _)| key.clone())
            .collect();
        keys.into_iter()
            .filter_map(|key| {
                let entry = self.remove(&key)?;
                Some((key, entry))
            })
            .collect()
    }

    /// Live keys.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every live key and its value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Keyed<V>)> {
        self.entries.iter().map(|(key, entry)| (&**key, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max_keys: u32, labeled_keys: u32) -> KeyTable<u32> {
        KeyTable::new(
            &KeyedConfig::default()
                .max_keys(max_keys)
                .labeled_keys(labeled_keys),
        )
    }

    #[test]
    fn keys_beyond_the_cap_overflow_and_labels_beyond_theirs_are_other() {
        let mut t = table(3, 2);
        assert_eq!(t.place(), Place::New { labeled: true });
        assert!(t.insert("a", 1).unwrap().labeled);
        assert!(t.insert("b", 2).unwrap().labeled);
        assert!(!t.insert("c", 3).unwrap().labeled);
        assert_eq!(t.place(), Place::Overflow);
        assert!(t.insert("d", 4).is_none());
        // A key already there is replaced in place, label kept.
        assert!(t.insert("a", 10).unwrap().labeled);
        assert_eq!(t.get("a").unwrap().value, 10);
        // Removing a labeled key frees a slot and a label.
        assert!(t.remove("b").unwrap().labeled);
        assert_eq!(t.place(), Place::New { labeled: true });
        assert!(t.remove("b").is_none());
    }

    #[test]
    fn evict_drops_what_is_idle_and_frees_its_slots() {
        let mut t = table(4, 4);
        for (key, value) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
            t.insert(key, value);
        }
        let mut gone: Vec<_> = t
            .evict(|v| v % 2 == 0)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        gone.sort();
        assert_eq!(gone, [Box::from("b"), Box::from("d")]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.place(), Place::New { labeled: true });
    }

    /// The reference: a list of (key, labeled), with the same caps, under random operations.
    #[test]
    fn agrees_with_a_list_model() {
        let (max_keys, labeled_keys) = (8, 3);
        let mut t = table(max_keys, labeled_keys);
        let mut model: Vec<(String, bool)> = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..5_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let key = format!("k{}", state % 13);
            if state.is_multiple_of(3) {
                let expected = model
                    .iter()
                    .position(|(k, _)| *k == key)
                    .map(|i| model.remove(i));
                assert_eq!(t.remove(&key).map(|e| e.labeled), expected.map(|(_, l)| l));
            } else if let Some((_, labeled)) = model.iter().find(|(k, _)| *k == key) {
                assert_eq!(t.insert(&key, 0).map(|e| e.labeled), Some(*labeled));
            } else if model.len() < max_keys as usize {
                let labeled = model.iter().filter(|(_, l)| *l).count() < labeled_keys as usize;
                model.push((key.clone(), labeled));
                assert_eq!(t.insert(&key, 0).map(|e| e.labeled), Some(labeled));
            } else {
                assert!(t.insert(&key, 0).is_none(), "full: {key} overflows");
            }
            assert_eq!(t.len(), model.len());
        }
    }
}
