//! The handlers, one module per resource, registered on a utoipa `OpenApiRouter` so that the OpenAPI
//! document (`GET /openapi.json`) is generated from the same code and covers every route.

mod cluster;
mod dead_letters;
mod deliveries;
mod events;
mod health;
mod sources;
mod subscriptions;
mod tenants;

use crate::ErrorBody;
use crate::auth::Principal;
use axum::Json;
use axum::routing::get;
use std::sync::Arc;
use tributary_engine::Node;
use tributary_plugin::Caller;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Errors every authenticated route can answer.
pub(crate) type Err = ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(title = "tributary", description = "Reliable event streams from decentralized networks and databases. Authenticate with `Authorization: Bearer <admin key or tenant API key>`."),
    modifiers(&BearerAuth),
    tags(
        (name = "sources", description = "Where events come from"),
        (name = "events", description = "The durable log"),
        (name = "subscriptions", description = "Who receives which events"),
        (name = "dead letters", description = "Deliveries that failed for good"),
        (name = "tenants", description = "Tenants and their API keys (admin)"),
        (name = "operations", description = "Health, metrics and the cluster"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn api_router() -> OpenApiRouter<Arc<Node>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::metrics))
        .routes(routes!(cluster::cluster))
        .routes(routes!(sources::list_sources))
        .routes(routes!(sources::get_source))
        .routes(routes!(sources::ingest))
        .routes(routes!(sources::source_rejects))
        .routes(routes!(events::list_events))
        .routes(routes!(events::get_event))
        .routes(routes!(
            subscriptions::list_subscriptions,
            subscriptions::create_subscription
        ))
        .routes(routes!(
            subscriptions::get_subscription,
            subscriptions::update_subscription,
            subscriptions::delete_subscription
        ))
        .routes(routes!(subscriptions::subscription_secret))
        .routes(routes!(subscriptions::rotate_secret))
        .routes(routes!(subscriptions::pause))
        .routes(routes!(subscriptions::resume))
        .routes(routes!(subscriptions::send_test))
        .routes(routes!(deliveries::deliveries))
        .routes(routes!(deliveries::attempts))
        .routes(routes!(deliveries::replay))
        .routes(routes!(dead_letters::stats))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::replay))
        .routes(routes!(dead_letters::purge))
        .routes(routes!(tenants::list_tenants, tenants::create_tenant))
        .routes(routes!(tenants::get_tenant))
        .routes(routes!(tenants::list_keys, tenants::create_key))
        .routes(routes!(tenants::revoke_key))
}

/// The routes the source types contribute (`/v1/<type>/…`), each request authenticated first and its
/// caller handed to the plug-in as a [`Caller`] with the sources it may read.
fn plugin_routes(node: Option<Arc<Node>>) -> OpenApiRouter<Arc<Node>> {
    let Some(node) = node else {
        return tributary_sources::Services::default().routes().with_state(());
    };
    node.services
        .routes()
        .layer(axum::middleware::from_fn_with_state(node.clone(), attach_caller))
        .with_state(())
}

/// Authenticates a request to a plug-in's route and attaches its [`Caller`].
async fn attach_caller(
    axum::extract::State(node): axum::extract::State<Arc<Node>>,
    principal: Principal,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let readable_sources = (node.sources.keys())
        .filter(|s| principal.sees_source(&node, s))
        .cloned()
        .collect();
    let tenant = match principal {
        Principal::Admin => None,
        Principal::Tenant(t) => Some(t),
    };
    request.extensions_mut().insert(Caller {
        tenant,
        readable_sources,
    });
    next.run(request).await
}

/// Documents the error answers every route can give (bad query or path, missing or invalid key, invalid
/// body, unavailable store), so the document matches what the server really answers.
fn add_common_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = path == "/health" || path == "/metrics";
        let has_params = path.contains('{');
        for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete]
            .into_iter()
            .flatten()
        {
            let mut add = |code: &str, what: &str| {
                op.responses
                    .responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error(what).into());
            };
            if public {
                continue;
            }
            add("400", "a malformed query, path or body");
            add("401", "missing, invalid or revoked API key");
            add("503", "the store cannot serve the request");
            if has_params {
                add("404", "no such object, or not visible to this caller");
            }
            if op.request_body.is_some() {
                add("413", "body too large");
                add("415", "the body is not JSON");
                add(
                    "422",
                    "the body does not fit the schema, or an Idempotency-Key was reused",
                );
                add(
                    "409",
                    "a conflict (name taken, read-only object, Idempotency-Key still in use)",
                );
            }
        }
    }
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().merge(plugin_routes(None)).into_openapi();
    add_common_errors(&mut doc);
    doc
}

/// All routes, with `/openapi.json` and the `Idempotency-Key` layer.
pub fn router(node: Arc<Node>) -> axum::Router {
    let budget = tributary_sources::http::MemoryBudget::new(
        usize::try_from(node.config.node.max_ingest_in_flight_bytes).unwrap_or(usize::MAX),
    );
    let (router, mut doc) = api_router().merge(plugin_routes(Some(node.clone()))).split_for_parts();
    add_common_errors(&mut doc);
    let doc = Arc::new(doc);
    router
        .route(
            "/openapi.json",
            get(move || std::future::ready(Json(doc.as_ref().clone()))),
        )
        .fallback(|| async { crate::ApiError::not_found("no such route; see GET /openapi.json") })
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            crate::idempotency::layer,
        ))
        .layer(axum::Extension(budget))
        .with_state(node)
}

/// `?after=&limit=` paging shared by list routes.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// Return items after this sequence number (exclusive). Default 0.
    #[serde(default)]
    pub after: u64,
    /// At most this many items (1–1000). Default 100.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    100
}

impl Page {
    pub(crate) fn limit(&self) -> usize {
        self.limit.clamp(1, 1000)
    }
}
