//! `DELETE /v1/counters/{name}`: retires a counter name on this node (admin), so that it no
//! longer takes one of the `IDGEN_MAX_COUNTERS` slots; a later use of the name continues above
//! everything it issued. Nothing here sets, resets or lowers a counter.

use actix_web::HttpResponse;
use idgen_core::counter::CounterName;
use idgen_core::wire::{ErrorBody, RetiredCounter};

use crate::error::ApiError;
use crate::state::AppState;

/// `DELETE /v1/counters/{name}`
#[utoipa::path(
    delete,
    path = "/v1/counters/{name}",
    tag = "operations",
    summary = "Retire a counter name",
    description = "Admin: the counter leaves this node's IDGEN_MAX_COUNTERS slots and is not \
                   loaded again at start. Its mark is kept, so a later request for the name \
                   continues above every value it issued (never a repeat). Requests for the \
                   name that arrive while it is being retired get 503. In Redis mode the \
                   counter lives on in Redis: the node forgets what it buffers for it (a gap).",
    params(("name" = String, Path, description = "The counter name ([A-Za-z0-9_.-]{1,64})")),
    responses(
        (status = 200, description = "Retired", body = RetiredCounter),
        (status = 400, description = "Not a valid counter name", body = ErrorBody),
        (status = 404, description = "This node keeps no counter of that name", body = ErrorBody),
        (status = 503, description = "Requests still use it, or the store cannot be written", body = ErrorBody),
    )
)]
pub async fn retire_counter(state: &AppState, name: &str) -> Result<HttpResponse, ApiError> {
    let name = CounterName::parse(name)?;
    let issuer = state.issuer();
    let Some(mark) = issuer.retire_counter(&name).await? else {
        return Err(ApiError::UnknownCounter);
    };
    tracing::info!(counter = %name, mark, "counter retired");
    let mark = (mark > 0).then_some(mark);
    Ok(HttpResponse::Ok().json(RetiredCounter::new(name.as_str(), mark)))
}
