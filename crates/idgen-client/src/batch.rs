//! [`Batches`]: more IDs than one request may carry, fetched a chunk at a time.

use idgen_core::Kind;
use idgen_core::wire::IdRequest;

use crate::{Client, Error};

/// Sizes of the requests that fetch `total` IDs at most `chunk_size` at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkPlan {
    remaining: u64,
    chunk_size: u32,
}

impl ChunkPlan {
    fn new(total: u64, chunk_size: u32) -> Self {
        // A chunk size of 0 would never finish; treat it as 1.
        Self { remaining: total, chunk_size: chunk_size.max(1) }
    }
}

impl Iterator for ChunkPlan {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.remaining == 0 {
            return None;
        }
        let size =
            u32::try_from(self.remaining).map_or(self.chunk_size, |rest| rest.min(self.chunk_size));
        self.remaining -= u64::from(size);
        Some(size)
    }
}

/// A large number of IDs, fetched one request at a time; see [`Client::batches`].
#[derive(Debug, Clone)]
pub struct Batches {
    client: Client,
    kind: Kind,
    request: IdRequest,
    plan: ChunkPlan,
}

impl Batches {
    pub(crate) fn new(
        client: Client,
        kind: Kind,
        request: IdRequest,
        total: u64,
        chunk_size: u32,
    ) -> Self {
        Self { client, kind, request, plan: ChunkPlan::new(total, chunk_size) }
    }

    /// The next chunk of IDs, or `None` when all have been fetched. A chunk's request is
    /// retried under the client's [`RetryPolicy`](crate::RetryPolicy); once that gives up,
    /// the error comes back and the next call moves on to the following chunk.
    pub async fn next_batch(&mut self) -> Option<Result<Vec<String>, Error>> {
        let size = self.plan.next()?;
        let request = IdRequest { count: Some(size), ..self.request.clone() };
        Some(self.client.ids(self.kind, &request).await)
    }

    /// How many IDs are still to be fetched.
    pub fn remaining(&self) -> u64 {
        self.plan.remaining
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_chunks() {
        fn check(total: u64, chunk_size: u32, expected: &[u32]) {
            let sizes: Vec<u32> = ChunkPlan::new(total, chunk_size).collect();
            assert_eq!(sizes, expected, "total {total}, chunk size {chunk_size}");
        }
        check(0, 10_000, &[]);
        check(1, 10_000, &[1]);
        check(10_000, 10_000, &[10_000]);
        check(10_001, 10_000, &[10_000, 1]);
        check(25_000, 10_000, &[10_000, 10_000, 5_000]);
        check(7, 3, &[3, 3, 1]);
        check(3, 0, &[1, 1, 1]);
        let huge = u64::from(u32::MAX) * 2 + 5;
        let sizes: Vec<u32> = ChunkPlan::new(huge, u32::MAX).collect();
        assert_eq!(sizes, [u32::MAX, u32::MAX, 5]);
    }
}
