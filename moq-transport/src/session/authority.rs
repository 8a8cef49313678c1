//! Authorization: the peer's token cache (draft-19 §AUTHORIZATION TOKEN) and the one check that every request and
//! every update naming a namespace passes through ([`Inner::authorize`]).

use std::collections::HashMap;

use bytes::Bytes;
use moq_wire::codes::{RequestErrorCode, SessionCode};
use moq_wire::control::{ControlMessage, FetchType, RequestUpdate};
use moq_wire::namespace::TrackNamespace;
use moq_wire::token::AuthToken;
use web_transport_trait::Session as WtSession;

use super::Inner;
use super::config::{Action, AuthContext};
use super::rules::Refusal;
use crate::error::{Error, SessionError};

/// Bytes a registered token occupies in the cache besides its value (draft-19 §MAX_AUTH_TOKEN_CACHE_SIZE).
const ENTRY_OVERHEAD: u64 = 16;

/// Why a request's tokens could not be used.
#[derive(Debug)]
pub(super) enum TokenFault {
    /// Ends the session (a duplicate or unknown alias, a cache overflow, DELETE or USE_ALIAS in SETUP).
    Session(Error),
    /// Refuses the request only.
    Request(RequestErrorCode, &'static str),
}

/// The aliases the peer registered, with their tokens.
#[derive(Debug, Default)]
pub(super) struct TokenCache {
    entries: HashMap<u64, (u64, Bytes)>,
    /// The draft's size: 16 bytes plus the value of every registered token.
    size: u64,
    /// The MAX_AUTH_TOKEN_CACHE_SIZE we announced (0: no aliases).
    max: u64,
    /// The peer's SETUP tokens, resolved to values.
    setup: Vec<AuthToken>,
}

fn token_error(code: SessionCode, reason: &'static str) -> TokenFault {
    TokenFault::Session(Error::Session(SessionError::Closed { code, reason: reason.to_string() }))
}

impl TokenCache {
    pub(super) fn new(max: u64) -> TokenCache {
        TokenCache { max, ..Default::default() }
    }

    /// Takes the peer's SETUP tokens. A client's DELETE or USE_ALIAS there is a protocol violation; a REGISTER
    /// that does not fit the cache is used as a plain value.
    pub(super) fn take_setup(&mut self, tokens: &[AuthToken], peer_is_client: bool) -> Result<(), Error> {
        let mut values = Vec::with_capacity(tokens.len());
        for token in tokens {
            match token {
                //= draft-ietf-moq-transport-19#authorization-token
                //# If a server receives Alias Type DELETE (0x0) or USE_ALIAS (0x2) in a SETUP
                //# message, it MUST close the session with a `PROTOCOL_VIOLATION`.
                AuthToken::Delete { .. } | AuthToken::UseAlias { .. } if peer_is_client => {
                    return Err(Error::protocol("DELETE or USE_ALIAS token in SETUP"));
                }
                AuthToken::Delete { .. } | AuthToken::UseAlias { .. } => {}
                AuthToken::Register { alias, token_type, value } => {
                    if self.entries.contains_key(alias) {
                        return Err(Error::Session(SessionError::Closed {
                            code: SessionCode::DuplicateAuthTokenAlias,
                            reason: "alias registered twice".into(),
                        }));
                    }
                    //= draft-ietf-moq-transport-19#setup-auth-token
                    //# it MUST NOT fail
                    //# the session with `AUTH_TOKEN_CACHE_OVERFLOW`.  Instead, it MUST treat the
                    //# option as Alias Type USE_VALUE.
                    if self.fits(value) {
                        self.insert(*alias, *token_type, value.clone());
                    }
                    values.push(AuthToken::UseValue { token_type: *token_type, value: value.clone() });
                }
                AuthToken::UseValue { .. } => values.push(token.clone()),
            }
        }
        self.setup = values;
        Ok(())
    }

    /// The peer's SETUP tokens, as values.
    pub(super) fn setup_tokens(&self) -> &[AuthToken] {
        &self.setup
    }

    /// Applies a request's or update's tokens to the cache (REGISTER, DELETE) and returns what they stand for, as
    /// values. Registrations stand even if the request is refused later.
    pub(super) fn resolve(&mut self, tokens: &[AuthToken]) -> Result<Vec<AuthToken>, TokenFault> {
        let mut values: Vec<AuthToken> = Vec::with_capacity(tokens.len());
        let mut repeated = false;
        for token in tokens {
            let value = match token {
                AuthToken::Delete { alias } => {
                    let Some((_, value)) = self.entries.remove(alias) else {
                        return Err(token_error(SessionCode::UnknownAuthTokenAlias, "DELETE of an unknown alias"));
                    };
                    self.size -= ENTRY_OVERHEAD + value.len() as u64;
                    continue;
                }
                AuthToken::Register { alias, token_type, value } => {
                    //= draft-ietf-moq-transport-19#authorization-token
                    //# The receiver of a message attempting to
                    //# register an Alias which is already registered MUST close the Session with
                    //# `DUPLICATE_AUTH_TOKEN_ALIAS`.
                    if self.entries.contains_key(alias) {
                        return Err(token_error(SessionCode::DuplicateAuthTokenAlias, "alias registered twice"));
                    }
                    //# If a registration is attempted which would cause this limit
                    //# to be exceeded, the receiver MUST terminate the Session with a
                    //# `AUTH_TOKEN_CACHE_OVERFLOW` error.
                    if !self.fits(value) {
                        return Err(token_error(SessionCode::AuthTokenCacheOverflow, "token cache full"));
                    }
                    self.insert(*alias, *token_type, value.clone());
                    AuthToken::UseValue { token_type: *token_type, value: value.clone() }
                }
                AuthToken::UseAlias { alias } => match self.entries.get(alias) {
                    Some((token_type, value)) => AuthToken::UseValue { token_type: *token_type, value: value.clone() },
                    None => {
                        return Err(token_error(SessionCode::UnknownAuthTokenAlias, "USE_ALIAS of an unknown alias"));
                    }
                },
                AuthToken::UseValue { .. } => token.clone(),
            };
            repeated |= values.contains(&value);
            values.push(value);
        }
        //# The AUTHORIZATION TOKEN parameter MAY be repeated within a message as long as
        //# the combination of Token Type and Token Value are unique after resolving any
        //# aliases.
        if repeated {
            return Err(TokenFault::Request(RequestErrorCode::MalformedAuthToken, "the same token twice"));
        }
        Ok(values)
    }

    fn fits(&self, value: &Bytes) -> bool {
        self.size.saturating_add(ENTRY_OVERHEAD + value.len() as u64) <= self.max
    }

    fn insert(&mut self, alias: u64, token_type: u64, value: Bytes) {
        self.size += ENTRY_OVERHEAD + value.len() as u64;
        self.entries.insert(alias, (token_type, value));
    }
}

/// What a granted request was authorized with, for the updates that follow it.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub(super) action: Action,
    /// The request's tokens, as values.
    pub(super) tokens: Vec<AuthToken>,
}

/// The action and namespace a request asks for, and its tokens; `None` for a Joining FETCH (it rides on a
/// subscription that was authorized already) and for messages that are not requests.
pub(super) fn request_scope(msg: &ControlMessage) -> Option<(Action, &TrackNamespace)> {
    Some(match msg {
        ControlMessage::Subscribe(m) => (Action::Subscribe, &m.track.namespace),
        ControlMessage::TrackStatus(m) => (Action::Subscribe, &m.track.namespace),
        ControlMessage::SubscribeNamespace(m) => (Action::Subscribe, &m.prefix),
        ControlMessage::SubscribeTracks(m) => (Action::Subscribe, &m.prefix),
        ControlMessage::PublishNamespace(m) => (Action::Publish, &m.namespace),
        ControlMessage::Publish(m) => (Action::Publish, &m.track.namespace),
        ControlMessage::Fetch(m) => match &m.fetch_type {
            FetchType::Standalone { track, .. } => (Action::Subscribe, &track.namespace),
            _ => return None,
        },
        _ => return None,
    })
}

/// A request's AUTHORIZATION_TOKEN parameters.
pub(super) fn request_tokens(msg: &ControlMessage) -> &[AuthToken] {
    match msg {
        ControlMessage::Subscribe(m) => &m.params.auth_tokens,
        ControlMessage::TrackStatus(m) => &m.params.auth_tokens,
        ControlMessage::SubscribeNamespace(m) => &m.params.auth_tokens,
        ControlMessage::SubscribeTracks(m) => &m.params.auth_tokens,
        ControlMessage::PublishNamespace(m) => &m.params.auth_tokens,
        ControlMessage::Publish(m) => &m.params.auth_tokens,
        ControlMessage::Fetch(m) => &m.params.auth_tokens,
        _ => &[],
    }
}

impl<S: WtSession> Inner<S> {
    /// Applies tokens to the cache; a fault that ends the session closes it here.
    pub(super) fn resolve_tokens(&self, tokens: &[AuthToken]) -> Result<Vec<AuthToken>, Refusal> {
        let resolved = self.state().tokens.resolve(tokens);
        match resolved {
            Ok(values) => Ok(values),
            Err(TokenFault::Session(e)) => {
                self.close(e);
                Err((RequestErrorCode::MalformedAuthToken, "token error"))
            }
            Err(TokenFault::Request(code, reason)) => Err((code, reason)),
        }
    }

    /// The one authorization check: may the peer do `action` on `namespace` with these tokens (values) and those
    /// of its SETUP? Every request, every update that moves a request to another namespace, and every track
    /// offered for a SUBSCRIBE_TRACKS passes here.
    pub(super) fn authorize(&self, action: Action, namespace: &TrackNamespace, tokens: &[AuthToken]) -> bool {
        let Some(authorize) = &self.config.authorizer else { return true };
        let setup = self.peer_setup.get();
        let path = self
            .config
            .connect_path
            .clone()
            .or_else(|| setup.and_then(|s| s.path.as_ref()).map(|p| String::from_utf8_lossy(p).into_owned()));
        let setup_tokens = self.state().tokens.setup_tokens().to_vec();
        let ctx = AuthContext { path: path.as_deref(), setup_tokens: &setup_tokens, request_tokens: tokens };
        let ok = authorize(&ctx, action, namespace);
        if !ok {
            tracing::info!(?action, %namespace, "unauthorized");
        }
        ok
    }

    /// Checks an update of a granted request: its tokens go through the cache, and a move to `new` namespace must
    /// be authorized with the request's tokens and the update's. `Err` is the REQUEST_ERROR to answer with; the
    /// request keeps its old namespace.
    pub(super) fn authorize_update(
        &self,
        grant: &Grant,
        update: &RequestUpdate,
        new: Option<&TrackNamespace>,
    ) -> Result<(), Refusal> {
        let mut tokens = match self.check_update(update) {
            Ok(checked) => checked?,
            Err(e) => {
                self.close(e);
                return Err((RequestErrorCode::InternalError, "invalid request id"));
            }
        };
        if let Some(new) = new {
            tokens.extend(grant.tokens.iter().cloned());
            if !self.authorize(grant.action, new, &tokens) {
                return Err((RequestErrorCode::Unauthorized, "unauthorized"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(alias: u64, value: &'static str) -> AuthToken {
        AuthToken::Register { alias, token_type: 0, value: Bytes::from_static(value.as_bytes()) }
    }

    fn code(fault: TokenFault) -> SessionCode {
        match fault {
            TokenFault::Session(e) => e.session_code(),
            TokenFault::Request(..) => panic!("a request error, not a session error"),
        }
    }

    #[test]
    fn aliases_register_resolve_and_delete() {
        let mut cache = TokenCache::new(100);
        let values = cache.resolve(&[register(1, "abc")]).unwrap();
        assert_eq!(values, vec![AuthToken::value("abc")]);
        assert_eq!(cache.size, 19);
        assert_eq!(cache.resolve(&[AuthToken::UseAlias { alias: 1 }]).unwrap(), vec![AuthToken::value("abc")]);
        assert_eq!(code(cache.resolve(&[register(1, "x")]).unwrap_err()), SessionCode::DuplicateAuthTokenAlias);
        assert!(cache.resolve(&[AuthToken::Delete { alias: 1 }]).unwrap().is_empty());
        assert_eq!(cache.size, 0);
        assert_eq!(
            code(cache.resolve(&[AuthToken::UseAlias { alias: 1 }]).unwrap_err()),
            SessionCode::UnknownAuthTokenAlias
        );
        assert_eq!(
            code(cache.resolve(&[AuthToken::Delete { alias: 1 }]).unwrap_err()),
            SessionCode::UnknownAuthTokenAlias
        );
        // Deleted, the alias may be registered again.
        cache.resolve(&[register(1, "def")]).unwrap();
    }

    #[test]
    fn the_cache_size_is_enforced() {
        // 16 + 10 bytes fits in 30; a second one does not.
        let mut cache = TokenCache::new(30);
        cache.resolve(&[register(1, "0123456789")]).unwrap();
        assert_eq!(code(cache.resolve(&[register(2, "0")]).unwrap_err()), SessionCode::AuthTokenCacheOverflow);
        // The default MAX_AUTH_TOKEN_CACHE_SIZE of 0 allows no alias at all.
        let mut none = TokenCache::new(0);
        assert_eq!(code(none.resolve(&[register(1, "")]).unwrap_err()), SessionCode::AuthTokenCacheOverflow);
        // Plain values need no room.
        assert_eq!(none.resolve(&[AuthToken::value("v")]).unwrap(), vec![AuthToken::value("v")]);
    }

    #[test]
    fn a_token_twice_is_malformed() {
        let mut cache = TokenCache::new(100);
        let fault = cache.resolve(&[register(1, "t"), AuthToken::value("t")]).unwrap_err();
        assert!(matches!(fault, TokenFault::Request(RequestErrorCode::MalformedAuthToken, _)));
        // The registration stands although the request fails.
        assert_eq!(cache.resolve(&[AuthToken::UseAlias { alias: 1 }]).unwrap(), vec![AuthToken::value("t")]);
    }

    #[test]
    fn setup_tokens_follow_their_own_rules() {
        let mut cache = TokenCache::new(20);
        let err = cache.take_setup(&[AuthToken::UseAlias { alias: 1 }], true).unwrap_err();
        assert_eq!(err.session_code(), SessionCode::ProtocolViolation);
        let err = TokenCache::new(20).take_setup(&[AuthToken::Delete { alias: 1 }], true).unwrap_err();
        assert_eq!(err.session_code(), SessionCode::ProtocolViolation);
        // A REGISTER that does not fit is used as a value, not a session error; one that fits is registered.
        cache.take_setup(&[register(1, "long token value"), register(2, "ok")], true).unwrap();
        assert_eq!(cache.setup_tokens(), &[AuthToken::value("long token value"), AuthToken::value("ok")]);
        assert_eq!(
            code(cache.resolve(&[AuthToken::UseAlias { alias: 1 }]).unwrap_err()),
            SessionCode::UnknownAuthTokenAlias
        );
        assert_eq!(cache.resolve(&[AuthToken::UseAlias { alias: 2 }]).unwrap(), vec![AuthToken::value("ok")]);
    }
}
