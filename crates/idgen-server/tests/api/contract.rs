//! The served OpenAPI document against the real server: for every operation it lists, real
//! requests (good ones and the errors it documents) get a status it documents for that
//! operation, a content type it documents, every header it marks required, and a body that
//! validates against its schema (JSON Schema 2020-12, `$ref`s resolved inside the document).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, spawn_app, with_query};

/// One request to send, and the status it must get.
struct Probe {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    expected: u16,
}

fn probe(method: Method, path: &str, query: &[(&'static str, &str)], expected: u16) -> Probe {
    let query = query.iter().map(|(name, value)| (*name, (*value).to_owned())).collect();
    Probe { method, path: path.to_owned(), query, body: None, expected }
}

/// Checks `response` (to `method path`) against the document's operation; returns its body.
async fn check(document: &Value, template: &str, method: &Method, response: reqwest::Response) {
    let status = response.status().as_u16().to_string();
    let what = format!("{method} {template} -> {status}");
    let operation = &document["paths"][template][method.as_str().to_lowercase()];
    assert!(operation.is_object(), "{what}: no such operation");
    let documented = &operation["responses"][&status];
    assert!(documented.is_object(), "{what}: status not documented");
    for (name, header) in documented["headers"].as_object().into_iter().flatten() {
        if header["required"] == true {
            assert!(response.headers().contains_key(name.as_str()), "{what}: no {name} header");
        }
    }
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().split(';').next().unwrap().trim().to_owned());
    let body = response.bytes().await.unwrap();
    let Some(content) = documented["content"].as_object() else {
        assert!(body.is_empty(), "{what}: a body the document does not describe");
        return;
    };
    let content_type = content_type.unwrap_or_else(|| panic!("{what}: no content type"));
    let media = content.get(&content_type).unwrap_or_else(|| {
        panic!("{what}: content type {content_type} not documented ({:?})", content.keys())
    });
    if content_type != "application/json" {
        return;
    }
    let instance: Value =
        serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{what}: not JSON"));
    let mut schema = media["schema"].clone();
    schema["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{what}: {e}"));
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {instance} does not match: {errors:?}");
}

async fn send(app: &TestApp, probe: &Probe) -> reqwest::Response {
    let query: Vec<(&str, &str)> = probe.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = app.url(&with_query(&probe.path, &query));
    let mut request = app.client.request(probe.method.clone(), url);
    if let Some(body) = &probe.body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// Good and bad requests for the operation `method template`.
async fn probes(app: &TestApp, template: &str, method: &Method) -> Vec<Probe> {
    let mut probes = Vec::new();
    if let Some(kind) = template.strip_prefix("/v1/ids/") {
        // The generic path, with one kind of the enum; the per-kind paths, as they are.
        let path = if kind == "{kind}" { "/v1/ids/ulid".to_owned() } else { template.to_owned() };
        let template = path.as_str();
        let extra: &[(&str, &str)] = match kind {
            "counter" => &[("name", "contract")],
            "random" => &[("length", "12"), ("alphabet", "base58")],
            _ => &[],
        };
        probes.push(probe(method.clone(), template, extra, 200));
        let mut batch = extra.to_vec();
        batch.push(("count", "3"));
        probes.push(probe(method.clone(), template, &batch, 200));
        probes.push(probe(method.clone(), template, &[("count", "0")], 400));
        if *method == Method::POST {
            let mut with_body = probe(Method::POST, template, &[], 200);
            with_body.body = Some(json!({ "count": 2 }));
            probes.push(with_body);
            let mut bad = probe(Method::POST, template, &[], 400);
            bad.body = Some(json!([1]));
            probes.push(bad);
        }
    } else if let Some(kind) =
        template.strip_prefix("/v1/decode/").and_then(|t| t.strip_suffix("/{id}"))
    {
        let id = app.id(kind, &[]).await;
        probes.push(probe(Method::GET, &format!("/v1/decode/{kind}/{id}"), &[], 200));
        probes.push(probe(Method::GET, &format!("/v1/decode/{kind}/not-an-id"), &[], 400));
    } else if let Some(kind) = template.strip_prefix("/v1/bounds/") {
        // Now, as ms and as RFC 3339 (the ksuid range starts in 2014, the others earlier).
        let now = idgen_core::wire::rfc3339_ms(crate::helpers::now_ms());
        let path = format!("/v1/bounds/{kind}");
        probes.push(probe(
            Method::GET,
            &path,
            &[("time", &crate::helpers::now_ms().to_string())],
            200,
        ));
        probes.push(probe(Method::GET, &path, &[("time", &now)], 200));
        probes.push(probe(Method::GET, &path, &[("time", "soon")], 400));
        probes.push(probe(Method::GET, &path, &[], 400));
    } else if template == "/v1/counters/{name}" {
        app.id("counter", &[("name", "contract")]).await;
        probes.push(probe(Method::DELETE, "/v1/counters/contract", &[], 200));
        probes.push(probe(Method::DELETE, "/v1/counters/contract", &[], 404));
        probes.push(probe(Method::DELETE, "/v1/counters/not%20a%20name", &[], 400));
    } else if template == "/generate_random_string/{length}" {
        probes.push(probe(Method::GET, "/generate_random_string/8", &[], 200));
        probes.push(probe(Method::GET, "/generate_random_string/0", &[], 400));
    } else {
        probes.push(probe(method.clone(), template, &[], 200));
    }
    // A method the path does not have.
    let other = if *method == Method::DELETE { Method::PUT } else { Method::DELETE };
    let mut wrong = probe(other, &probes[0].path, &[], 405);
    wrong.query.clear();
    probes.push(wrong);
    probes
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_answers_as_documented() {
    // Rate limiting on (far above what the test sends), so its headers are checked too.
    let app = spawn_app(
        Options::new()
            .env("IDGEN_RATE_LIMIT_PER_SECOND", 100_000)
            .env("IDGEN_RATE_LIMIT_BURST", 100_000)
            .flag("--max-batch", 500),
    );
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(document["paths"]["/v1/ids/uuid"]["get"]["parameters"][0]["schema"]["maximum"], 500);
    let mut checked = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            for probe in probes(&app, template, &method).await {
                let response = send(&app, &probe).await;
                let what = format!("{} {} {:?}", probe.method, probe.path, probe.query);
                assert_eq!(
                    response.status(),
                    StatusCode::from_u16(probe.expected).unwrap(),
                    "{what}"
                );
                // The document's operation for the 405 is the path's first one.
                let method =
                    if probe.expected == 405 { method.clone() } else { probe.method.clone() };
                check(&document, template, &method, response).await;
                checked += 1;
            }
        }
    }
    assert!(checked >= 90, "only {checked} answers checked");
    // And the shapes a generated client relies on: one ID or a batch, never both.
    let single = &document["paths"]["/v1/ids/uuid7"]["get"]["responses"]["200"];
    assert_eq!(
        single["content"]["application/json"]["schema"]["oneOf"].as_array().unwrap().len(),
        2
    );
}
