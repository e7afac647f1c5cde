//! Which cases a run measures and in what order: the units of cases that run back to back
//! ([`plan`]) and each round's order of them around the ceiling runs ([`round_order`]).

use crate::model::{BATCH_SIZES, CEILING_RUNS, CONNECTIONS, Case, Group, Load, ServerKey};
use crate::model::{TUTORIAL_ROUTES, kinds};

/// Besides [`CONNECTIONS`], which the single-ID `v1/uuid7` case already covers.
const OTHER_CONNECTIONS: [u32; 3] = [1, 10, 200];

/// The constant route most targets compare with: case 0 of every run.
pub fn ceiling() -> Case {
    Case::http("ceiling", Group::Ceiling, ServerKey::Embedded, "/healthz")
}

/// Every case of a run but the ceiling, in units that always run back to back: a case whose
/// target compares it with a reference other than the ceiling shares a unit with that
/// reference, right next to it, so that each pair is measured seconds apart in every round.
pub fn plan(quick: bool, redis: bool) -> Vec<Vec<Case>> {
    let mut units = single_id_units(quick);
    let tutorial: &[&str] = if quick { &TUTORIAL_ROUTES[..1] } else { &TUTORIAL_ROUTES };
    for route in tutorial {
        let id = format!("tutorial{route}");
        units.push(vec![Case::http(&id, Group::Tutorial, ServerKey::Embedded, route)]);
    }
    let sizes: &[u64] = if quick { &[1_000] } else { &BATCH_SIZES };
    for &size in sizes {
        units.push(vec![Case::batch(size, false), Case::batch(size, true)]);
    }
    if !quick {
        units.extend(OTHER_CONNECTIONS.map(|connections| vec![Case::connections(connections)]));
    }
    if redis {
        units.extend(redis_units());
    }
    units
}

/// `/v1/ids/{kind}` of every kind (two of them in a quick run), rate limiting on next to
/// uuid7, which is its "off", and uuid7 and counter with an API key next to their open runs.
fn single_id_units(quick: bool) -> Vec<Vec<Case>> {
    let kinds: Vec<&str> = if quick { vec!["uuid7", "counter"] } else { kinds().collect() };
    let mut units = Vec::new();
    for kind in kinds {
        let id = format!("v1/{kind}");
        let path = format!("/v1/ids/{kind}");
        let mut unit = vec![Case::http(&id, Group::Single, ServerKey::Embedded, &path)];
        if kind == "uuid7" {
            let on = Case::http("rate-limit/on", Group::RateLimit, ServerKey::RateLimited, &path);
            unit.push(on);
        }
        units.push(unit);
        // Units of their own: their target is against the ceiling, so they need no neighbour.
        if kind == "uuid7" || kind == "counter" {
            let keyed = format!("keyed/{kind}");
            units.push(vec![Case::http(&keyed, Group::Keys, ServerKey::Keyed, &path)]);
        }
    }
    units
}

fn redis_units() -> [Vec<Case>; 4] {
    use ServerKey::*;
    let strict_alone = Case {
        id: "redis/counter-block-1-c1".to_owned(),
        group: Group::Redis,
        load: Load::Http {
            server: RedisBlock1,
            path: "/v1/ids/counter".to_owned(),
            accept: None,
            connections: 1,
            ids: 1,
        },
    };
    [
        vec![Case::http(
            "redis/counter-block-1000",
            Group::Redis,
            RedisBlock1000,
            "/v1/ids/counter",
        )],
        vec![Case::http("redis/uuid", Group::Redis, RedisBlock1000, "/v1/ids/uuid")],
        // redis-benchmark is the reference of the two rows around it.
        vec![
            Case::http("redis/counter-block-1", Group::Redis, RedisBlock1, "/v1/ids/counter"),
            Case {
                id: "redis-benchmark/incr".to_owned(),
                group: Group::Redis,
                load: Load::RedisIncr { connections: CONNECTIONS },
            },
            Case::http("redis/uuid-rate-limited", Group::Redis, RedisRateLimited, "/v1/ids/uuid"),
        ],
        // One connection: nothing to coalesce, so a strict counter pays one round trip per
        // request; the reference is redis-benchmark on one connection.
        vec![
            strict_alone,
            Case {
                id: "redis-benchmark/incr-c1".to_owned(),
                group: Group::Redis,
                load: Load::RedisIncr { connections: 1 },
            },
        ],
    ]
}

/// The case indices one round runs, where case 0 is the ceiling and the units of
/// `unit_sizes` (see [`plan`]) hold cases 1, 2, ... in order.
///
/// The units run once each, rotated by whole units (`round * units / rounds`) so that no case
/// always follows the same neighbour and no unit is split. The ceiling runs
/// [`CEILING_RUNS`] times, at the unit boundaries nearest to evenly spaced points of the round
/// (the first at its start), so every case has a ceiling run a few runs before and after it
/// (see `target::BRACKET_RUNS`), and the spacing holds across rounds too. Odd rounds reverse
/// each unit.
pub fn round_order(unit_sizes: &[usize], round: usize, rounds: usize) -> Vec<usize> {
    let mut units = Vec::new();
    let mut first = 1;
    for &size in unit_sizes {
        units.push(first..first + size);
        first += size;
    }
    let offset = round * units.len() / rounds;
    units.rotate_left(offset);
    // boundaries[i]: how many cases run before unit i; the last one is the round's length.
    let mut boundaries = vec![0];
    for unit in &units {
        boundaries.push(boundaries.last().expect("starts with 0") + unit.len());
    }
    let total = first - 1;
    let ceilings: Vec<usize> = (0..CEILING_RUNS)
        .map(|run| {
            // The boundary nearest `run * total / CEILING_RUNS` (the earlier on a tie).
            (0..boundaries.len())
                .min_by_key(|&i| (boundaries[i] * CEILING_RUNS).abs_diff(run * total))
                .expect("there is always boundary 0")
        })
        .collect();
    let mut order = Vec::with_capacity(total + CEILING_RUNS);
    for index in 0..boundaries.len() {
        order.extend(ceilings.iter().filter(|&&ceiling| ceiling == index).map(|_| 0));
        if let Some(unit) = units.get(index) {
            // Odd rounds run a unit back to front, so that a case is not always measured
            // right after its reference (or before it): a drift within the pair cancels.
            if round % 2 == 1 {
                order.extend(unit.clone().rev());
            } else {
                order.extend(unit.clone());
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_plan_is_small_and_full_plan_has_every_row() {
        let quick: Vec<Case> = plan(true, false).into_iter().flatten().collect();
        assert!(quick.len() < 10);
        let full: Vec<Case> = plan(false, true).into_iter().flatten().collect();
        assert_eq!(full.len(), 35, "the ceiling aside");
        let ids = ["v1/random", "tutorial/generate_uuid", "batch/text/10000", "rate-limit/on"];
        for id in ids.into_iter().chain(["keyed/uuid7", "keyed/counter"]) {
            assert!(full.iter().any(|case| case.id == id), "{id} missing");
        }
        assert!(full.iter().all(|case| case.id != "ceiling"), "the ceiling is case 0, apart");
        assert!(full.iter().any(|case| matches!(case.load, Load::RedisIncr { .. })));
    }

    #[test]
    fn every_kind_of_the_catalogue_has_its_single_id_case() {
        let full: Vec<Case> = plan(false, false).into_iter().flatten().collect();
        for kind in kinds() {
            let case = full.iter().find(|case| case.id == format!("v1/{kind}"));
            let Some(Case { group: Group::Single, load: Load::Http { path, .. }, .. }) = case
            else {
                panic!("no single-ID case for {kind}");
            };
            assert_eq!(path, &format!("/v1/ids/{kind}"));
        }
    }

    #[test]
    fn each_case_runs_next_to_its_reference() {
        // (reference, case) of every target whose reference is not the ceiling.
        let mut pairs = vec![
            ("v1/uuid7".to_owned(), "rate-limit/on".to_owned()),
            ("redis-benchmark/incr".to_owned(), "redis/counter-block-1".to_owned()),
            ("redis-benchmark/incr".to_owned(), "redis/uuid-rate-limited".to_owned()),
            ("redis-benchmark/incr-c1".to_owned(), "redis/counter-block-1-c1".to_owned()),
        ];
        pairs.extend(
            BATCH_SIZES.map(|size| (format!("batch/json/{size}"), format!("batch/text/{size}"))),
        );
        for (quick, redis) in [(true, false), (true, true), (false, true)] {
            let units = plan(quick, redis);
            for (reference, case) in &pairs {
                let Some(unit) = units.iter().find(|unit| unit.iter().any(|c| &c.id == case))
                else {
                    assert!(quick || !case.starts_with("batch"), "{case} missing");
                    continue;
                };
                let position = |id: &str| unit.iter().position(|c| c.id == id);
                let (Some(reference), Some(case)) = (position(reference), position(case)) else {
                    panic!("{case} is not in its reference {reference}'s unit");
                };
                assert_eq!(reference.abs_diff(case), 1, "{case} is not next to {reference}");
            }
        }
    }

    /// The runs between consecutive ceiling runs of `order`, the last gap wrapping round to
    /// the next round's first ceiling run.
    fn ceiling_gaps(order: &[usize]) -> Vec<usize> {
        let ceilings: Vec<usize> = (0..order.len()).filter(|&i| order[i] == 0).collect();
        let mut gaps: Vec<usize> = ceilings.windows(2).map(|pair| pair[1] - pair[0] - 1).collect();
        gaps.push(order.len() - ceilings.last().expect("a ceiling run") - 1 + ceilings[0]);
        gaps
    }

    #[test]
    fn a_round_runs_every_unit_once_and_the_ceiling_evenly() {
        let unit_sizes: Vec<usize> = plan(false, true).iter().map(Vec::len).collect();
        let total: usize = unit_sizes.iter().sum();
        let rounds = 4;
        let mut firsts = Vec::new();
        for round in 0..rounds {
            let order = round_order(&unit_sizes, round, rounds);
            assert_eq!(order.len(), total + CEILING_RUNS);
            assert_eq!(order[0], 0, "each round starts with the ceiling");
            let mut cases: Vec<usize> = order.iter().copied().filter(|&i| i != 0).collect();
            firsts.push(cases[0]);
            cases.sort_unstable();
            assert_eq!(cases, (1..=total).collect::<Vec<_>>(), "every case once");
            // Units are never split, by the rotation or by a ceiling run; odd rounds run them
            // back to front.
            let mut first = 1;
            for &size in &unit_sizes {
                let mut unit: Vec<usize> = (first..first + size).collect();
                if round % 2 == 1 {
                    unit.reverse();
                }
                let at = order.iter().position(|&i| i == unit[0]).expect("planned");
                assert_eq!(order[at..at + size], unit);
                first += size;
            }
            // 35 cases in units of 1 to 4 between 7 ceiling runs: 3 to 7 cases apart (the
            // mean is 5; a unit is never split), so the ceiling runs on both sides of a case
            // are well within `target::BRACKET_RUNS` of it.
            for gap in ceiling_gaps(&order) {
                assert!((3..=7).contains(&gap), "gap of {gap} in round {round}: {order:?}");
                assert!((gap as u64) < crate::target::BRACKET_RUNS);
            }
        }
        firsts.dedup();
        assert_eq!(firsts.len(), rounds, "the order rotates: {firsts:?}");
    }

    #[test]
    fn round_order_of_tiny_plans() {
        assert_eq!(round_order(&[], 0, 1), vec![0; CEILING_RUNS]);
        // One unit of two: the ceiling still runs seven times, at the nearest boundary.
        assert_eq!(round_order(&[2], 0, 1), vec![0, 0, 0, 0, 1, 2, 0, 0, 0]);
        // The quick plan: uuid7 + rate limit on, counter, a tutorial route, a batch pair.
        assert_eq!(round_order(&[2, 1, 1, 2], 0, 1), vec![0, 0, 1, 2, 0, 3, 0, 0, 4, 0, 5, 6, 0]);
        // Odd rounds reverse each unit.
        assert_eq!(round_order(&[2, 1, 1, 2], 1, 2), vec![0, 4, 0, 0, 6, 5, 0, 0, 2, 1, 0, 0, 3]);
    }
}
