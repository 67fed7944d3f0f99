//! The upload routes of the HTTP listener: `PUT` into a signed slot, `GET` (and `HEAD`) of a stored file. Only
//! `/upload/<owner>/<slot>/<name>` exists; anything else under `/upload/` is the listener's 404, so there is no
//! directory listing.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use tracing::{debug, warn};

use super::{DIR, Uploads, is_id, is_safe_name, unix};

/// The routes, to merge into the listener's router.
pub fn routes(uploads: Arc<Uploads>) -> Router {
    Router::new()
        .route(
            &format!("/{DIR}/{{owner}}/{{slot}}/{{name}}"),
            put(put_file).get(get_file),
        )
        .with_state(uploads)
}

type Segments = Path<(String, String, String)>;

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// The query's `expires` and `sig`.
fn signature(query: Option<&str>) -> Option<(u64, &str)> {
    let (mut expires, mut sig) = (None, None);
    for pair in query?.split('&') {
        match pair.split_once('=') {
            Some(("expires", v)) => expires = v.parse().ok(),
            Some(("sig", v)) => sig = Some(v),
            _ => {}
        }
    }
    Some((expires?, sig?))
}

async fn put_file(
    State(u): State<Arc<Uploads>>,
    Path((owner, slot, name)): Segments,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !(is_id(&owner) && is_id(&slot) && is_safe_name(&name)) {
        return refuse(StatusCode::NOT_FOUND, "not found");
    }
    let path = format!("/{DIR}/{owner}/{slot}/{name}");
    let Some((expires, sig)) = signature(query.as_deref()) else {
        return refuse(StatusCode::FORBIDDEN, "not a signed upload URL");
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(size) = header(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok()) else {
        return refuse(StatusCode::LENGTH_REQUIRED, "Content-Length is required");
    };
    let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
    // The size and type are part of what was signed: a PUT that differs from the slot fails here.
    if !u.verify(&path, size, content_type, expires, sig) {
        return refuse(
            StatusCode::FORBIDDEN,
            "the URL's signature does not match this upload",
        );
    }
    if unix(SystemTime::now()) > expires {
        return refuse(StatusCode::FORBIDDEN, "the upload slot has expired");
    }
    // Slots asked for at once could together pass the quota; the PUT counts again.
    let (u2, o) = (u.clone(), owner.clone());
    match tokio::task::spawn_blocking(move || u2.usage(&o)).await {
        Ok(Ok(used)) if used.saturating_add(size) <= u.settings.quota => {}
        Ok(Ok(_)) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "the upload quota is used up"),
        _ => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "cannot count uploads"),
    }
    let dir = u.dir.join(&owner).join(&slot);
    match store(&dir, &name, content_type, size, body).await {
        Ok(()) => {
            debug!(%path, size, "upload stored");
            StatusCode::CREATED.into_response()
        }
        Err(response) => {
            if response.status() != StatusCode::CONFLICT {
                let _ = tokio::fs::remove_dir_all(&dir).await;
            }
            response
        }
    }
}

/// Writes the body to `dir/content` (through `content.part`, so a half-written file is never served) and its
/// type and name to `dir/meta`.
async fn store(
    dir: &std::path::Path,
    name: &str,
    content_type: &str,
    size: u64,
    body: Body,
) -> Result<(), Response> {
    let failed = |e: std::io::Error| {
        warn!(dir = %dir.display(), error = %e, "cannot store an upload");
        refuse(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the file")
    };
    tokio::fs::create_dir_all(dir).await.map_err(failed)?;
    let part = dir.join("content.part");
    // One PUT per slot: the file is never replaced, and two PUTs at once do not interleave.
    let mut file = match tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&part)
        .await
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(refuse(StatusCode::CONFLICT, "this slot was used already"));
        }
        Err(e) => return Err(failed(e)),
    };
    if tokio::fs::try_exists(dir.join("content"))
        .await
        .unwrap_or(true)
    {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(refuse(StatusCode::CONFLICT, "this slot was used already"));
    }
    let mut written = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Err(refuse(StatusCode::BAD_REQUEST, "the upload was cut off"));
        };
        written += chunk.len() as u64;
        if written > size {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "the body is longer than Content-Length",
            ));
        }
        file.write_all(&chunk).await.map_err(failed)?;
    }
    if written != size {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the body is shorter than Content-Length",
        ));
    }
    file.sync_all().await.map_err(failed)?;
    tokio::fs::write(dir.join("meta"), format!("{content_type}\n{name}"))
        .await
        .map_err(failed)?;
    tokio::fs::rename(&part, dir.join("content"))
        .await
        .map_err(failed)?;
    Ok(())
}

async fn get_file(State(u): State<Arc<Uploads>>, Path((owner, slot, name)): Segments) -> Response {
    let not_found = || refuse(StatusCode::NOT_FOUND, "not found");
    if !(is_id(&owner) && is_id(&slot) && is_safe_name(&name)) {
        return not_found();
    }
    let dir = u.dir.join(&owner).join(&slot);
    let Ok(meta) = tokio::fs::read_to_string(dir.join("meta")).await else {
        return not_found();
    };
    let (content_type, stored_name) = meta.split_once('\n').unwrap_or(("", ""));
    if stored_name != name {
        return not_found();
    }
    // Files are at most `max_file_size`, so one read is fine.
    let Ok(bytes) = tokio::fs::read(dir.join("content")).await else {
        return not_found();
    };
    let content_type = if content_type.is_empty() {
        "application/octet-stream"
    } else {
        content_type
    };
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            // What users upload is served from the server's origin: never let a browser run it as a page.
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response()
}
