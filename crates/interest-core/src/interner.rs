//! Item keys as small integers for the length of one statement: the
//! co-visitation graph then hashes and copies integers, not strings (a bulk
//! load makes millions of links).

use std::collections::HashMap;

#[derive(Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
    keys: Vec<String>,
}

impl Interner {
    /// The key's id, given at its first sight.
    pub fn id(&mut self, key: String) -> u32 {
        if let Some(&i) = self.ids.get(&key) {
            return i;
        }
        let i = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.ids.insert(key, i);
        i
    }

    /// As `id`, allocating only for a key not seen before.
    pub fn id_of(&mut self, key: &str) -> u32 {
        match self.ids.get(key) {
            Some(&i) => i,
            None => self.id(key.to_string()),
        }
    }

    pub fn key(&self, id: u32) -> &str {
        &self.keys[id as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_stable_and_reversible() {
        let mut ids = Interner::default();
        let a = ids.id("a".into());
        let b = ids.id_of("b");
        assert_eq!((a, b), (0, 1));
        assert_eq!(ids.id_of("a"), a);
        assert_eq!(ids.id("b".into()), b);
        assert_eq!((ids.key(a), ids.key(b)), ("a", "b"));
    }
}
