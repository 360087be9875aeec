//! OGC API - Features Part 1 Core under `/api`, the coverage report, `/api/me` and the API
//! definition `/api/openapi` ([`super::openapi`]; the one endpoint here served without a token).
//!
//! Items pages: `limit` (default [`super::Limits::default_page`], at most
//! [`super::Limits::max_page`]: a larger one is capped, as OGC says), `offset`, `bbox`
//! (`minLon,minLat,maxLon,maxLat`, WGS84), `code` (admin code prefix), `datetime` (accepted,
//! no collection is temporal) and `f` (`json`/`geojson`: the only encoding). Any other
//! parameter, or a malformed one, is a 400 with `{code, description}`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::auth::{Auth, RoleExt, User};
use super::error::ApiError;
use super::features::{feature_json, find, select, Collection, Filter};
use super::geom::Bbox;
use super::{blocking, AppState};
use crate::model::Level;
use crate::output::sort_worst_first;

/// Media type of GeoJSON.
pub const GEOJSON: &str = "application/geo+json";

const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

/// The routes under `/api`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api", get(landing))
        .route("/api/", get(landing))
        .route("/api/conformance", get(conformance))
        .route("/api/collections", get(collections))
        .route("/api/collections/{id}", get(collection))
        .route("/api/collections/{id}/items", get(items))
        .route("/api/collections/{id}/items/{fid}", get(item))
        .route("/api/report", get(report))
        .route("/api/report/effective", get(super::effective::report))
        .route("/api/me", get(me))
        .route("/api/openapi", get(openapi))
}

pub(crate) type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Checks the query: only `allowed` keys, each at most once; `f` must ask for JSON, unless
/// `allowed` names `f` (the caller reads it: an endpoint with other encodings).
pub(crate) fn params(q: Params, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let Query(v) = q.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let mut seen: Vec<&str> = Vec::new();
    for (k, val) in &v {
        if k != "f" && !allowed.contains(&k.as_str()) {
            let mut all: Vec<&str> = allowed.to_vec();
            if !all.contains(&"f") {
                all.push("f");
            }
            return Err(ApiError::bad_request(format!("unknown parameter {k:?} (known: {})", all.join(", "))));
        }
        if seen.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!("parameter {k:?} given twice")));
        }
        seen.push(k);
        if k == "f"
            && !allowed.contains(&"f")
            && !matches!(val.as_str(), "json" | "geojson" | "application/json" | "application/geo+json")
        {
            return Err(ApiError::bad_request(format!("f={val:?}: only JSON is served (f=json)")));
        }
    }
    Ok(v)
}

/// The parameters every report shares: `level` (default county), `code` (a prefix) and `limit`
/// (default 30, at least 1, capped at `max`).
pub(crate) fn report_params(v: &[(String, String)], max: usize) -> Result<(Level, Option<String>, usize), ApiError> {
    let level: Level = match get_param(v, "level") {
        None => Level::County,
        Some(l) => l.parse().map_err(|e| ApiError::bad_request(format!("level: {e}")))?,
    };
    let code = get_param(v, "code").map(Filter::parse_code).transpose().map_err(ApiError::bad_request)?;
    let limit = match parse_usize(v, "limit")? {
        None => 30,
        Some(0) => return Err(ApiError::bad_request("limit must be at least 1")),
        Some(n) => n.min(max),
    };
    Ok((level, code, limit))
}

pub(crate) fn get_param<'a>(v: &'a [(String, String)], k: &str) -> Option<&'a str> {
    v.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str())
}

/// `http://HOST` of the request, for absolute links.
/// `http://HOST` of the request, for the links of a response: the `Host` header when it is a
/// plain host name or address (with port), else `localhost`; one rule for every link
/// (collections, items, TileJSON tile URLs), so no header can inject text into them.
pub(crate) fn base_url(h: &HeaderMap) -> String {
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).filter(|s| valid_host(s)).unwrap_or("localhost");
    format!("http://{host}")
}

fn valid_host(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

fn json_response(v: &Value) -> Response {
    let mut r = v.to_string().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn link(href: String, rel: &str, ty: &str, title: &str) -> Value {
    json!({ "href": href, "rel": rel, "type": ty, "title": title })
}

async fn landing(Auth(_): Auth, h: HeaderMap, q: Params) -> Result<Response, ApiError> {
    params(q, &[])?;
    let b = base_url(&h);
    Ok(json_response(&json!({
        "title": "gridcover",
        "description": "Coverage of the veterans' service-station network: admin units with coverage figures, stations, households (by role), service grids and gap areas.",
        "links": [
            link(format!("{b}/api"), "self", "application/json", "This document"),
            link(format!("{b}/api/openapi"), "service-desc", super::openapi::MEDIA_TYPE, "The API definition (OpenAPI 3.0)"),
            link(format!("{b}/api/conformance"), "conformance", "application/json", "Conformance classes"),
            link(format!("{b}/api/collections"), "data", "application/json", "Collections"),
        ]
    })))
}

async fn conformance(Auth(_): Auth, q: Params) -> Result<Response, ApiError> {
    params(q, &[])?;
    Ok(json_response(&json!({
        "conformsTo": [
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
            super::openapi::CONFORMANCE_OAS30,
        ]
    })))
}

/// The extent of the served data, read on a blocking thread (never a world lock on the async
/// workers).
async fn extent(s: &AppState) -> Result<Bbox, ApiError> {
    let s = s.clone();
    blocking(move || Ok(s.world().extent)).await
}

fn collection_json(ext: Bbox, user: &User, c: Collection, b: &str) -> Value {
    let id = c.id();
    json!({
        "id": id,
        "title": c.title(),
        "description": c.description(user.role),
        "itemType": "feature",
        "crs": [CRS84],
        "extent": { "spatial": { "bbox": [ext.to_array()], "crs": CRS84 } },
        "links": [
            link(format!("{b}/api/collections/{id}"), "self", "application/json", "This collection"),
            link(format!("{b}/api/collections/{id}/items"), "items", GEOJSON, "Items"),
        ]
    })
}

async fn collections(State(s): State<AppState>, Auth(u): Auth, h: HeaderMap, q: Params) -> Result<Response, ApiError> {
    params(q, &[])?;
    let b = base_url(&h);
    let ext = extent(&s).await?;
    let list: Vec<Value> = Collection::ALL.iter().map(|c| collection_json(ext, &u, *c, &b)).collect();
    Ok(json_response(&json!({
        "links": [link(format!("{b}/api/collections"), "self", "application/json", "Collections")],
        "collections": list,
    })))
}

fn parse_collection(id: &str) -> Result<Collection, ApiError> {
    Collection::parse(id).ok_or_else(|| {
        let ids: Vec<String> = Collection::ALL.iter().map(|c| c.id()).collect();
        ApiError::not_found(format!("no collection {id:?} (collections: {})", ids.join(", ")))
    })
}

async fn collection(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
    h: HeaderMap,
    q: Params,
) -> Result<Response, ApiError> {
    params(q, &[])?;
    let c = parse_collection(&id)?;
    let ext = extent(&s).await?;
    Ok(json_response(&collection_json(ext, &u, c, &base_url(&h))))
}

/// Current time as RFC 3339 UTC (seconds).
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub(crate) fn parse_usize(v: &[(String, String)], k: &str) -> Result<Option<usize>, ApiError> {
    match get_param(v, k) {
        None => Ok(None),
        Some(s) => s
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{k}={s:?} is not a non-negative integer"))),
    }
}

/// The filter of an items request.
fn filter_of(v: &[(String, String)]) -> Result<Filter, ApiError> {
    let bbox = get_param(v, "bbox").map(Bbox::parse_param).transpose().map_err(ApiError::bad_request)?;
    let code = get_param(v, "code").map(Filter::parse_code).transpose().map_err(ApiError::bad_request)?;
    Ok(Filter { bbox, code })
}

fn query_string(v: &[(String, String)], offset: usize, limit: usize) -> String {
    let mut parts: Vec<String> = v
        .iter()
        .filter(|(k, _)| k != "offset" && k != "limit")
        .map(|(k, val)| format!("{k}={}", encode(val)))
        .collect();
    parts.push(format!("limit={limit}"));
    parts.push(format!("offset={offset}"));
    parts.join("&")
}

/// Percent-encodes a query value (unreserved characters and `,` kept).
pub(crate) fn encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~,".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn geojson_response(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(GEOJSON));
    r
}

/// What an items page is cached by: everything its bytes depend on but the time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PageKey {
    collection: Collection,
    /// Whose view: `None` for leaders and planners, a grid worker's grids otherwise.
    viewer: Option<Vec<String>>,
    base: String,
    params: Vec<(String, String)>,
}

/// Pages of items, by [`PageKey`] (a page without its `timeStamp`, see [`stamped`]).
pub(crate) type PageCache = super::cache::ByteCache<PageKey>;

/// A cached page with the time of this response: the page ends just before its last member.
fn stamped(page: &[u8]) -> Response {
    let now = now_rfc3339();
    let mut out = Vec::with_capacity(page.len() + 40);
    out.extend_from_slice(page);
    out.extend_from_slice(br#","timeStamp":""#);
    out.extend_from_slice(now.as_bytes());
    out.extend_from_slice(br#""}"#);
    let mut r = out.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(GEOJSON));
    r
}

async fn items(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
    h: HeaderMap,
    q: Params,
) -> Result<Response, ApiError> {
    let v = params(q, &["limit", "offset", "bbox", "code", "datetime"])?;
    let c = parse_collection(&id)?;
    let filter = filter_of(&v)?;
    let lim = s.limits().clone();
    let limit = match parse_usize(&v, "limit")? {
        None => lim.default_page,
        Some(0) => return Err(ApiError::bad_request("limit must be at least 1")),
        Some(n) => n.min(lim.max_page),
    };
    let offset = parse_usize(&v, "offset")?.unwrap_or(0);
    let b = base_url(&h);
    // A grid worker's households are personal and audited: never cached. Every other page is
    // the same for all who may see it (households: counts in cells for leaders and planners).
    let personal = c == Collection::Households && !u.role.sees_aggregates();
    let viewer = (!u.role.sees_aggregates()).then(|| u.grids.clone());
    let key = (!personal).then(|| PageKey { collection: c, viewer, base: b.clone(), params: v.clone() });
    s.roll_day();
    if let Some(page) = key.as_ref().and_then(|k| s.inner.pages.get(k)) {
        return Ok(stamped(&page));
    }
    let generation = s.inner.pages.generation();
    let page = blocking(move || {
        // The effective figures of today, for the collections that carry them (before the
        // world's lock: they take it themselves).
        let svc = match c {
            Collection::Admin(_) | Collection::Grids => super::effective::layer_view(&s, &u)?,
            _ => None,
        };
        let w = s.world();
        let view = w.view(&u);
        let sel = select(&w, &view, &u, c, &filter);
        let matched = sel.len();
        let rows: Vec<u32> = match &sel {
            super::features::Selection::Rows(r) | super::features::Selection::Cells(_, r) => {
                r.iter().skip(offset).take(limit).copied().collect()
            }
        };
        let names = if personal && !rows.is_empty() {
            let ids: Vec<&str> = rows.iter().map(|&h| &w.ds().households.id[h as usize]).collect();
            s.audit(&u, "households.items", &ids.join(","))?;
            s.name_source().names(&w, &rows)?
        } else {
            super::features::Names::NONE
        };
        let mut out = String::with_capacity(1024 + rows.len() * 512);
        out.push_str(r#"{"type":"FeatureCollection","features":["#);
        for (k, &i) in rows.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push_str(&feature_json(&w, &view, svc.as_ref(), &names, c, &sel, i));
        }
        out.push_str("],");
        let path = format!("{b}/api/collections/{}/items", c.id());
        let mut links = vec![
            link(format!("{path}?{}", query_string(&v, offset, limit)), "self", GEOJSON, "This page"),
            link(format!("{b}/api/collections/{}", c.id()), "collection", "application/json", "The collection"),
        ];
        if offset + rows.len() < matched {
            links.push(link(
                format!("{path}?{}", query_string(&v, offset + limit, limit)),
                "next",
                GEOJSON,
                "Next page",
            ));
        }
        if offset > 0 {
            let prev = offset.saturating_sub(limit);
            links.push(link(format!("{path}?{}", query_string(&v, prev, limit)), "prev", GEOJSON, "Previous page"));
        }
        // The members after the features, without the closing brace: `stamped` adds the time.
        let tail = json!({ "numberMatched": matched, "numberReturned": rows.len(), "links": links }).to_string();
        out.push_str(&tail[1..tail.len() - 1]);
        let page = axum::body::Bytes::from(out);
        if let Some(k) = key {
            s.inner.pages.put(k, page.clone(), generation);
        }
        Ok(page)
    })
    .await?;
    Ok(stamped(&page))
}

async fn item(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path((id, fid)): Path<(String, String)>,
    h: HeaderMap,
    q: Params,
) -> Result<Response, ApiError> {
    params(q, &[])?;
    let c = parse_collection(&id)?;
    let b = base_url(&h);
    let body = blocking(move || {
        let svc = match c {
            Collection::Admin(_) | Collection::Grids => super::effective::layer_view(&s, &u)?,
            _ => None,
        };
        let w = s.world();
        let f = find(&w, &w.view(&u), svc.as_ref(), s.name_source(), &u, c, &fid)?;
        if c == Collection::Households && !u.role.sees_aggregates() {
            s.audit(&u, "households.item", &fid)?;
        }
        // Add the links to the feature object.
        let mut v: Value = serde_json::from_str(&f)?;
        let enc = encode(&fid);
        v["links"] = json!([
            link(format!("{b}/api/collections/{}/items/{enc}", c.id()), "self", GEOJSON, "This feature"),
            link(format!("{b}/api/collections/{}", c.id()), "collection", "application/json", "The collection"),
        ]);
        Ok(v.to_string())
    })
    .await?;
    Ok(geojson_response(body))
}

/// `GET /api/report`: units of a level worst first, as JSON (`limit` rows) or, with `f=xlsx`,
/// every unit of the level as an Excel sheet (Chinese headers, codes as text, a withheld
/// figure an empty cell): the same rows, order and decisions.
async fn report(State(s): State<AppState>, Auth(u): Auth, q: Params) -> Result<Response, ApiError> {
    let v = params(q, &["level", "code", "limit", "f"])?;
    if !u.role.sees_aggregates() {
        return Err(ApiError::forbidden("the coverage report is for leaders and planners"));
    }
    let (level, code, limit) = report_params(&v, s.limits().max_page)?;
    let xlsx = match get_param(&v, "f") {
        None | Some("json" | "application/json") => false,
        Some("xlsx") => true,
        Some(f) => return Err(ApiError::bad_request(format!("f={f:?}: json or xlsx"))),
    };
    blocking(move || {
        let w = s.world();
        let view = w.view(&u);
        // A unit whose coverage is withheld must not be placed by it: those come last, by code.
        let (mut units, withheld): (Vec<u32>, Vec<u32>) = sort_worst_first(w.ds(), w.an(), level)
            .into_iter()
            .filter(|&u| code.as_deref().is_none_or(|p| w.ds().divisions.get(u).code.starts_with(p)))
            .partition(|&u| view.disclosure.unit(crate::privacy::Family::Covered, u));
        let mut withheld = withheld;
        withheld.sort_by(|a, b| w.ds().divisions.get(*a).code.cmp(&w.ds().divisions.get(*b).code));
        units.extend(withheld);
        if xlsx {
            let rows = units
                .iter()
                .map(|&u| {
                    let fields = crate::output::coverage_fields(w.ds(), w.an(), u);
                    crate::output::COVERAGE_COLUMNS
                        .iter()
                        .zip(fields)
                        .map(|(c, f)| if view.disclosure.unit_column(c, u) { f } else { crate::output::Field::Real(None, 0) })
                        .collect()
                })
                .collect();
            let table = crate::output::table::Table {
                sheet: format!("覆盖 {}", level.zh()),
                columns: crate::output::COVERAGE_COLUMNS
                    .iter()
                    .map(|&c| (c, crate::output::coverage_column_zh(c)))
                    .collect(),
                rows,
            };
            return super::effective::xlsx_response(&table, &format!("coverage_{}.xlsx", level.as_str()));
        }
        let rows: Vec<Value> = units
            .iter()
            .take(limit)
            .map(|&u| Value::Object(super::features::admin_properties(&w, &view, None, u)))
            .collect();
        Ok(json_response(&json!({
            "level": level.as_str(),
            "code": code,
            "numberMatched": units.len(),
            "numberReturned": rows.len(),
            "order": "worst first: lowest coverage share, then most uncovered veterans, then code; units whose coverage is withheld last, by code",
            "rows": rows,
        })))
    })
    .await
}

/// `GET /api/openapi`: the API definition, without authentication (see [`super::openapi`]).
async fn openapi(q: Params) -> Result<Response, ApiError> {
    let v = params(q, &[])?;
    let json = match get_param(&v, "f") {
        None => false,
        Some("json" | "application/json") => true,
        Some(f) => {
            return Err(ApiError::bad_request(format!("f={f:?}: the definition is served as JSON only (f=json)")))
        }
    };
    super::openapi::response(json)
}

async fn me(Auth(u): Auth, q: Params) -> Result<Response, ApiError> {
    params(q, &[])?;
    Ok(json_response(&json!({ "id": u.id, "name": u.name, "role": u.role, "grids": u.grids })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }

    #[test]
    fn query_strings_keep_filters() {
        let v = vec![("bbox".to_string(), "1,2,3,4".to_string()), ("code".into(), "6201".into())];
        assert_eq!(query_string(&v, 20, 10), "bbox=1,2,3,4&code=6201&limit=10&offset=20");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
