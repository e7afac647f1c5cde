//! `GET /docs/`: Swagger UI for the OpenAPI document, served entirely by the binary (the UI's
//! files are compiled in: no CDN, so it works on a network with no way out). `/docs` redirects
//! to `/docs/`, whose relative asset paths then resolve under it.

use std::sync::{Arc, LazyLock};

use actix_web::HttpResponse;
use actix_web::http::header;
use utoipa_swagger_ui::Config;

use crate::error::ApiError;

/// The UI's configuration: the document to show, and no validator badge (by default the UI
/// sends the document to validator.swagger.io: a request off the network, and a leak).
static CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(Config::new(["/openapi.json"]).validator_url("none").try_it_out_enabled(true))
});

/// `file` of Swagger UI (`""`: its page).
fn serve(file: &str) -> Result<HttpResponse, ApiError> {
    match utoipa_swagger_ui::serve(file, Arc::clone(&CONFIG)) {
        Ok(Some(found)) => {
            let mut response = HttpResponse::Ok();
            response.content_type(found.content_type);
            if found.gzpipped {
                response.insert_header((header::CONTENT_ENCODING, "gzip"));
            }
            Ok(response.body(found.bytes.into_owned()))
        }
        Ok(None) => Err(ApiError::NotFound),
        Err(error) => Err(ApiError::Internal(anyhow::anyhow!("swagger ui: {error}"))),
    }
}

/// `GET /docs`
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    summary = "Redirects to /docs/",
    responses((status = 302, description = "To /docs/"))
)]
pub fn docs_redirect() -> HttpResponse {
    HttpResponse::Found().insert_header((header::LOCATION, "/docs/")).finish()
}

/// `GET /docs/`
#[utoipa::path(
    get,
    path = "/docs/",
    tag = "operations",
    summary = "Swagger UI for this API",
    responses((status = 200, description = "The page", content_type = "text/html"))
)]
pub fn docs_index() -> Result<HttpResponse, ApiError> {
    serve("")
}

/// `GET /docs/{file}`
#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "operations",
    summary = "A file of Swagger UI",
    params(("file" = String, Path, description = "e.g. swagger-ui-bundle.js")),
    responses(
        (status = 200, description = "The file"),
        (status = 404, description = "No such file", body = idgen_core::wire::ErrorBody),
    )
)]
pub fn docs_file(file: &str) -> Result<HttpResponse, ApiError> {
    serve(file)
}
