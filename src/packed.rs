//! Borrowed bytes copied for another thread in chunks: each item's byte runs one after
//! another in one buffer, beside its own small metadata. A chunk costs two allocations
//! however many items it holds, and [`Packed::take`] leaves the next chunk the capacity the
//! last one reached, so that it does not grow by doubling again.
//!
//! Used where the loop's thread hands work to a second one (issue 17): the restore's
//! changelog values to the applier (`changelog::applier`), a batch's indicator records to
//! the sender (`output::outbox`).

pub(crate) struct Packed<M> {
    bytes: Vec<u8>,
    /// Per item: where it ends in `bytes`, and its metadata.
    items: Vec<(usize, M)>,
}

impl<M> Packed<M> {
    pub(crate) fn with_capacity(items: usize) -> Packed<M> {
        Packed {
            bytes: Vec::new(),
            items: Vec::with_capacity(items),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends one item: `parts` copied in order, then `meta`.
    pub(crate) fn push(&mut self, parts: &[&[u8]], meta: M) {
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        self.items.push((self.bytes.len(), meta));
    }

    /// Each item's bytes (its parts together) and metadata, in the order pushed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &M)> {
        let mut start = 0;
        self.items.iter().map(move |(end, meta)| {
            let bytes = &self.bytes[start..*end];
            start = *end;
            (bytes, meta)
        })
    }

    /// The items so far, leaving an empty chunk with the same capacity.
    pub(crate) fn take(&mut self) -> Packed<M> {
        let next = Packed {
            bytes: Vec::with_capacity(self.bytes.capacity()),
            items: Vec::with_capacity(self.items.capacity()),
        };
        std::mem::replace(self, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_back_whole_in_order_with_their_metadata() {
        let mut chunk = Packed::with_capacity(4);
        chunk.push(&[b"key-1", b"{\"a\":1}"], (5, 7));
        chunk.push(&[], (0, 8));
        chunk.push(&[b"k2", b"", b"v"], (2, 9));
        let items: Vec<(&[u8], &(usize, i32))> = chunk.iter().collect();
        assert_eq!(
            items,
            [
                (&b"key-1{\"a\":1}"[..], &(5, 7)),
                (&b""[..], &(0, 8)),
                (&b"k2v"[..], &(2, 9)),
            ]
        );
    }

    #[test]
    fn a_taken_chunk_leaves_an_empty_one_as_large_as_it_grew() {
        let mut chunk = Packed::with_capacity(2);
        for i in 0..100u8 {
            chunk.push(&[&[i; 50]], i);
        }
        let (bytes, items) = (chunk.bytes.capacity(), chunk.items.capacity());
        let full = chunk.take();
        assert_eq!(full.len(), 100);
        assert!(full.iter().all(|(b, &i)| b == [i; 50]));
        assert!(chunk.is_empty());
        assert_eq!(chunk.iter().count(), 0);
        assert_eq!(
            (chunk.bytes.capacity(), chunk.items.capacity()),
            (bytes, items)
        );
    }
}
