//! Snowflakes: the generator of the worker id the back end grants, swapped when that id
//! changes, and its mark, raised only while the id is this node's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use idgen_core::snowflake::{SnowflakeConfig, SnowflakeGenerator, SnowflakeId, WorkerId};
use idgen_core::{Clock, IssueError};
use parking_lot::RwLock;

use super::policy::{CEILING_DEADLINE, EXHAUSTED_WAIT_BUDGET_MS, time_margin_ms, time_target};
use super::{Issuer, SharedClock};
use crate::backend::{Readiness, WorkerEvents};
use crate::error::{ApiError, Refusal};

/// The snowflake generator of the worker id held now.
pub(super) struct SnowflakeSlot {
    clock: SharedClock,
    /// Swapped only when the back end grants a new worker id.
    generator: RwLock<Arc<SnowflakeGenerator<SharedClock>>>,
}

impl SnowflakeSlot {
    /// A generator that resumes above the durable `mark_ms`.
    pub(super) fn new(clock: &SharedClock, config: SnowflakeConfig, mark_ms: u64) -> Self {
        let generator = snowflake_above(clock, config, mark_ms, mark_ms);
        Self { clock: Arc::clone(clock), generator: RwLock::new(Arc::new(generator)) }
    }

    pub(super) fn generator(&self) -> Arc<SnowflakeGenerator<SharedClock>> {
        Arc::clone(&self.generator.read())
    }
}

/// A snowflake generator that resumes above `floor` (a durable mark, or what this process
/// already issued) and issues nothing above `ceiling` until the back end makes a higher mark
/// durable.
fn snowflake_above(
    clock: &SharedClock,
    config: SnowflakeConfig,
    floor: u64,
    ceiling: u64,
) -> SnowflakeGenerator<SharedClock> {
    let generator = SnowflakeGenerator::new(Arc::clone(clock), config).with_floor(floor);
    generator.set_ceiling(ceiling);
    generator
}

impl WorkerEvents for Issuer {
    fn current_worker_id(&self) -> u16 {
        self.worker_id()
    }

    fn lost(&self) {
        // Whatever is in flight stops at the next ceiling check.
        self.snowflake.generator().set_ceiling(0);
    }

    fn leased(&self, worker_id: u16, mark_ms: u64) {
        let previous = self.snowflake.generator();
        // Start above the worker's mark, and above what this process issued with it.
        let mut floor = mark_ms;
        if worker_id == previous.config().worker_id.get() {
            floor = floor.max(previous.high_water_ms());
        }
        let layout = previous.config().layout;
        let config = SnowflakeConfig {
            worker_id: WorkerId::within(worker_id, layout)
                .expect("back ends grant ids within the layout's worker field"),
            ..previous.config()
        };
        let generator = snowflake_above(&self.snowflake.clock, config, floor, mark_ms);
        *self.snowflake.generator.write() = Arc::new(generator);
    }
}

impl Issuer {
    /// One snowflake.
    pub async fn snowflake(&self) -> Result<SnowflakeId, ApiError> {
        // Fast path: a valid worker id and room below the ceiling. Any error (ceiling, clock
        // behind) takes the general path, which waits, reserves or answers it; a failed
        // `generate` issues nothing.
        if self.backend.worker_valid()
            && let Ok(id) = self.snowflake.generator.read().generate()
        {
            return Ok(id);
        }
        let mut out = Vec::with_capacity(1);
        self.snowflakes(1, &mut out).await?;
        Ok(out[0])
    }

    /// `count` snowflakes appended to `out`, increasing.
    pub async fn snowflakes(
        &self,
        count: usize,
        out: &mut Vec<SnowflakeId>,
    ) -> Result<(), ApiError> {
        if !self.backend.worker_valid() {
            return Err(self.no_worker_id());
        }
        let generator = self.snowflake.generator();
        let target_len = out.len() + count;
        let mut waited_ms = 0;
        let deadline = Instant::now() + CEILING_DEADLINE;
        while out.len() < target_len {
            let missing = target_len - out.len();
            let before = out.len();
            let result = if missing == 1 {
                generator.generate().map(|id| out.push(id))
            } else {
                generator.generate_batch(missing, out)
            };
            match result {
                Ok(()) if out.len() == before => {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "snowflake generator reported success without issuing"
                    )));
                }
                Ok(()) => {}
                Err(IssueError::CeilingReached { needed, .. }) => {
                    if Instant::now() > deadline {
                        return Err(Refusal::CeilingUnavailable.into());
                    }
                    let config = generator.config();
                    let target = time_target(needed, self.clock.now_ms(), config.max_backward_ms);
                    let ceiling =
                        Box::pin(self.raise_snowflake(&generator, needed, target)).await?;
                    generator.set_ceiling(ceiling);
                }
                Err(IssueError::Exhausted { retry_after_ms }) => {
                    let wait_ms = retry_after_ms.max(1);
                    if waited_ms + wait_ms > EXHAUSTED_WAIT_BUDGET_MS {
                        return Err(Refusal::SequenceExhausted.into());
                    }
                    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                    waited_ms += wait_ms;
                }
                Err(error) => return Err(self.issue_error("snowflake", error)),
            }
        }
        Ok(())
    }

    /// Raises the snowflake mark of `generator`'s worker id through the back end, only while
    /// the id is ours; when it is not, `generator` stops.
    async fn raise_snowflake(
        &self,
        generator: &SnowflakeGenerator<SharedClock>,
        needed: u64,
        target: u64,
    ) -> Result<u64, ApiError> {
        let worker_id = generator.config().worker_id.get();
        match self.backend.raise_worker_mark(worker_id, needed, target).await? {
            Some(ceiling) => Ok(ceiling),
            None => {
                generator.set_ceiling(0);
                Err(self.no_worker_id())
            }
        }
    }

    fn no_worker_id(&self) -> ApiError {
        Refusal::NoWorkerId {
            store: self.backend.store_name(),
            retry_after_secs: self.backend.worker_retry_after_secs(),
        }
        .into()
    }

    /// A generator's refusal, as a user-facing 503.
    pub(super) fn issue_error(&self, kind: &'static str, error: IssueError) -> ApiError {
        match error {
            IssueError::ClockMovedBackwards { last_ms, now_ms } => Refusal::ClockBehind {
                kind,
                behind_ms: last_ms.saturating_sub(now_ms),
                allowance_ms: self.snowflake_config().max_backward_ms,
            },
            IssueError::TimeOutOfRange { .. } => Refusal::TimeOutOfRange { kind },
            IssueError::Exhausted { .. } => Refusal::Exhausted { kind },
            IssueError::CeilingReached { .. } => Refusal::CeilingUnavailable,
        }
        .into()
    }

    /// What keeps snowflakes from being issued whatever the back end says: a clock before the
    /// epoch, or behind the last issued id by more than the allowance.
    pub(super) fn snowflake_readiness(&self) -> Readiness {
        let mut readiness = Readiness { reasons: Vec::new(), retry_after_secs: 1, store_up: true };
        let generator = self.snowflake.generator();
        let config = generator.config();
        let now_ms = self.clock.now_ms();
        let high_water_ms = generator.high_water_ms();
        if now_ms < config.epoch_ms {
            readiness
                .reasons
                .push("snowflake: the clock reads a time before the snowflake epoch".to_owned());
            readiness.retry_after_secs = 60;
        } else if high_water_ms > now_ms.saturating_add(config.max_backward_ms) {
            let behind_ms = high_water_ms - now_ms;
            readiness.reasons.push(format!(
                "snowflake: the clock is {behind_ms} ms behind the last issued id (allowance {} ms)",
                config.max_backward_ms
            ));
            readiness.retry_after_secs =
                readiness.retry_after_secs.max((behind_ms - config.max_backward_ms).div_ceil(1000));
        }
        readiness
    }

    /// While ids are issued near a mark that the clock is about to reach.
    pub(super) async fn refresh_snowflake_mark(&self) {
        if !self.backend.worker_valid() {
            return;
        }
        let generator = self.snowflake.generator();
        let config = generator.config();
        let within = time_margin_ms(config.max_backward_ms) / 2;
        let high_water = generator.high_water_ms();
        // The ceiling is always a value the back end made durable.
        let durable = generator.ceiling_ms();
        let now_ms = self.clock.now_ms();
        let idle = high_water.saturating_add(within) < durable;
        let far_ahead = durable > now_ms.saturating_add(within);
        if idle || far_ahead {
            return;
        }
        let target = time_target(high_water.saturating_add(1), now_ms, config.max_backward_ms);
        if let Ok(ceiling) = self.raise_snowflake(&generator, target, target).await {
            generator.set_ceiling(ceiling);
        }
    }
}
