//! MoQT over a WebSocket on the relay's HTTP port, for browsers without a working WebTransport. Any path answers
//! an upgrade request; the path and query are the session's, as a WebTransport URL's would be. The WebSocket
//! carries QMux (see `moq_transport::websocket`); a session so made is admitted, limited and served exactly like
//! one over QUIC.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use axum::middleware::Next;
use hyper_util::rt::TokioIo;
use moq_transport::SessionConfig;
use moq_transport::quic::{Accepted, Via};
use moq_transport::websocket::tokio_tungstenite::WebSocketStream;
use moq_transport::websocket::tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use moq_transport::websocket::tokio_tungstenite::tungstenite::protocol::Role;

use crate::accept::Sessions;
use crate::admission::Verdict;

/// Routes a WebSocket upgrade request to [`upgrade`], anything else on.
pub(crate) async fn layer(State(sessions): State<Arc<Sessions>>, request: Request, next: Next) -> Response<Body> {
    if !wants_websocket(request.headers()) {
        return next.run(request).await;
    }
    upgrade(sessions, request).await
}

fn wants_websocket(headers: &HeaderMap) -> bool {
    let has = |name, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(token))
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

fn refuse(status: StatusCode, why: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("{why}\n")));
    *response.status_mut() = status;
    response
}

/// Answers a WebSocket upgrade: picks the subprotocol, admits the address, and serves the session once hyper
/// hands over the connection.
async fn upgrade(sessions: Arc<Sessions>, mut request: Request) -> Response<Body> {
    let headers = request.headers();
    if request.method() != Method::GET {
        return refuse(StatusCode::BAD_REQUEST, "a WebSocket upgrade is a GET");
    }
    // RFC 6455 section 4.4: a version the server does not speak is answered 426, naming the one it does.
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        let mut response = refuse(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only");
        response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    // The key is 16 random bytes in base64: 24 characters.
    let key = headers.get(header::SEC_WEBSOCKET_KEY).filter(|k| k.len() == 24);
    let Some(key) = key.map(|k| derive_accept_key(k.as_bytes())) else {
        return refuse(StatusCode::BAD_REQUEST, "no valid Sec-WebSocket-Key");
    };
    let offered = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok());
    let Some((protocol, version)) = moq_transport::websocket::select_protocol(offered) else {
        return refuse(StatusCode::BAD_REQUEST, "no MoQT version in common (offer qmux-02.moqt-19 or qmux-02.moqt-18)");
    };
    let Some(ConnectInfo(remote)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "no peer address");
    };
    // The TCP handshake has proven the address: no retry here.
    let ticket = match sessions.admission.admit(remote.ip(), true) {
        Verdict::Admit(ticket) => ticket,
        Verdict::Retry | Verdict::Refuse(_) => {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many sessions from this address");
        }
    };
    let Ok(slot) = sessions.websocket_slots.clone().try_acquire_owned() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many WebSocket sessions");
    };
    let path = request.uri().path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
    let on_upgrade = hyper::upgrade::on(&mut request);
    let config =
        SessionConfig { limits: sessions.limits(&ticket), connect_path: Some(path.clone()), ..sessions.config.clone() };
    let accepted = Accepted { version, via: Via::WebSocket, path, remote };
    let chosen = protocol.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(%remote, error = %e, "websocket upgrade failed"),
        };
        let ws_config = moq_transport::websocket::ws_config();
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config)).await;
        match moq_transport::websocket::accept(ws, &chosen, remote, config).await {
            Ok(session) => sessions.serve(session, accepted, ticket).await,
            Err(e) => sessions.handshake_failed(&e),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Ok(v) = HeaderValue::from_str(&protocol) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    response
}
