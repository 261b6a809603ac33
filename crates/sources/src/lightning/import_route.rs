//! `POST /v1/lightning/import`: a gossip file sent to a running node, stored through the same import as
//! `tributary import` on a stopped node ([`import`](super::import)). The body is the file itself, read
//! as it arrives (no size limit and no buffering of the whole file: a gossip_store of several GiB
//! streams through in 4 MiB reads); the answer, once the whole body is stored, is the import summary.
//! Admin only: an import writes into a source, which no tenant key may do.

use super::Format;
use super::import::{ChannelReader, ImportOptions, ImportSummary, import};
use super::routes::Lightning;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use http_body::Body as _;
use serde::Deserialize;
use tributary_plugin::{ApiError, Caller, ErrorBody as Err, Query};
use utoipa::IntoParams;

/// `?source=&format=&verify=&collector=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The `lightning` source the gossip belongs to.
    pub source: String,
    /// `auto` (default: detected from the first bytes), `gossip_store`, `gsp`, `compact` or `hex`.
    pub format: Option<String>,
    /// `false` stores without checking signatures and chain (trusted input only). Default `true`.
    pub verify: Option<bool>,
    /// The observer recorded on every message (default: the source name).
    pub collector: Option<String>,
    /// The chain (default: the source's `network`).
    pub network: Option<String>,
}

/// Imports a gossip file into a `lightning` source of the running node: the same checks, events, ids
/// and summary as `tributary import` on a stopped node. Events already stored are duplicates (an
/// observation is added), so an interrupted import is simply sent again.
#[utoipa::path(post, path = "/v1/lightning/import", tag = "lightning", security(("bearer" = [])),
    params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the gossip file (gossip_store, GSP, compact or hex lines)"),
    responses(
        (status = 200, body = ImportSummary, description = "the whole body was read and stored"),
        (status = 400, body = Err), (status = 401, body = Err), (status = 403, body = Err),
        (status = 404, body = Err), (status = 422, body = Err)))]
pub async fn import_gossip(
    State(state): State<Lightning>,
    p: Caller,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> Result<Json<ImportSummary>, ApiError> {
    if !p.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "importing gossip writes into a source: use the admin key",
        ));
    }
    let (Some(keeper), Some(settings)) = (state.keeper.clone(), state.sources.get(&q.source)) else {
        return Err(ApiError::not_found(format!(
            "source: no lightning source named {:?}; GET /v1/sources lists them, and [[sources]] with type = \"lightning\" defines one",
            q.source
        )));
    };
    let format = match q.format.as_deref().unwrap_or("auto") {
        "auto" => None,
        f => Some(
            f.parse::<Format>()
                .map_err(|e| ApiError::bad_request("invalid_query", format!("format: {e} (or auto)")))?,
        ),
    };
    let network = match q.network.as_deref() {
        None => settings.network,
        Some(n) => n
            .parse::<super::Network>()
            .map_err(|e| ApiError::bad_request("invalid_query", format!("network: {e}")))?,
    };
    let opts = ImportOptions {
        source: q.source.clone(),
        format,
        verify: q.verify.unwrap_or(true),
        network,
        collector: q.collector.clone(),
        max_waiting: settings.max_waiting,
        keep_waiting: false,
    };
    // The body is forwarded frame by frame to the import's reader thread (8 frames in flight).
    let (tx, reader) = ChannelReader::new(8);
    let forward = tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
            let chunk = match frame {
                Ok(f) => match f.into_data() {
                    Ok(data) => Ok(data),
                    Err(_) => continue,
                },
                Err(e) => Err(std::io::Error::other(format!("the request body broke off: {e}"))),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let store = keeper.store_arc();
    let summary = import(store, reader, opts, |_, _| {}).await;
    forward.abort();
    match summary {
        Ok(s) => {
            tracing::info!(source = %q.source, messages = s.messages, accepted = s.accepted,
                duplicates = s.duplicates, "gossip imported over the API");
            Ok(Json(s))
        }
        Err(super::import::ImportError::Store(e)) => Err(e.into()),
        Err(e @ super::import::ImportError::UnknownFormat) => Err(ApiError::unprocessable(
            "unknown_format",
            format!("{e}: ?format=gossip_store, gsp, compact or hex"),
        )),
        Err(e) => Err(ApiError::bad_request("invalid_body", e.to_string())),
    }
}
