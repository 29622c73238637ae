//! Typed sub-protocols: each concern that talks between nodes declares its own request and
//! response types under a name, and registers a handler for them on its node's transport.
//! The transport knows none of them; it checks who may call ([`Access`]) and routes by name.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::wire::{self, Duplex, LinkError, WireError};
use crate::NodeId;

/// Who may call a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who reaches the node (a joiner has no certificate yet).
    Anyone,
    /// A node with a certificate from the cluster's CA.
    Node,
    /// A node with a certificate that the catalog also lists as a member: a removed node
    /// keeps a valid certificate.
    Member,
}

/// One exchange between nodes: its name on the wire, who may call it, and its types.
///
/// A unary protocol answers each request once ([`crate::QuicTransport::call`]); a
/// streaming one answers the opening request and then both sides exchange raw
/// [`wire::Message`]s on the same stream ([`crate::QuicTransport::open`]).
pub trait Protocol: Send + Sync + 'static {
    /// Unique among the protocols of a cluster, `concern.verb` by convention.
    const NAME: &'static str;
    const ACCESS: Access;
    type Request: Serialize + DeserializeOwned + Send + Sync + 'static;
    type Response: Serialize + DeserializeOwned + Send + 'static;
}

/// Who called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The node its certificate names; `None` for a caller without one (joiners).
    pub node: Option<NodeId>,
    pub addr: SocketAddr,
}

impl Peer {
    /// The calling node's id; 0 for a caller without a certificate (only protocols open to
    /// [`Access::Anyone`] see one).
    pub fn id(&self) -> NodeId {
        self.node.unwrap_or(0)
    }
}

/// A streaming exchange the handler may accept (answering, then keeping the stream) or
/// refuse (answering, then closing it).
pub struct Opening<P: Protocol> {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    _protocol: std::marker::PhantomData<P>,
}

impl<P: Protocol> Opening<P> {
    /// Answers and keeps the stream for the exchange that follows.
    pub async fn accept(mut self, answer: &P::Response) -> Result<Duplex, LinkError> {
        wire::write_value(&mut self.send, &Ok::<_, WireError>(answer)).await?;
        Ok(Duplex::new(self.send, self.recv))
    }

    /// Answers and ends the exchange.
    pub async fn refuse(mut self, answer: &P::Response) {
        if wire::write_value(&mut self.send, &Ok::<_, WireError>(answer)).await.is_ok() {
            let _ = self.send.finish();
            let _ = self.send.stopped().await;
        }
    }
}

type Dispatch = Arc<dyn Fn(Peer, &[u8], quinn::SendStream, quinn::RecvStream) -> BoxFuture<'static, ()> + Send + Sync>;

struct Entry {
    access: Access,
    dispatch: Dispatch,
}

/// Says whether the catalog lists a node as a member.
pub type MemberCheck = Arc<dyn Fn(NodeId) -> bool + Send + Sync>;

/// The handlers registered on a transport, by protocol name.
#[derive(Default)]
pub(crate) struct Registry {
    entries: RwLock<HashMap<&'static str, Entry>>,
    members: RwLock<Option<MemberCheck>>,
}

/// Answers `result` on `send`, then waits for the far side to have read it.
async fn answer<T: Serialize>(mut send: quinn::SendStream, result: Result<T, WireError>) {
    if wire::write_value(&mut send, &result).await.is_ok() {
        let _ = send.finish();
        let _ = send.stopped().await;
    }
}

/// Answers a request that does not decode: logged with the caller, counted.
async fn refuse_malformed(send: quinn::SendStream, peer: Peer, protocol: &str, e: postcard::Error) {
    tracing::warn!(protocol, from = ?peer.node, addr = %peer.addr, error = %e, "malformed request refused");
    metrics::counter!("tessera_cluster_malformed_requests_total").increment(1);
    answer::<()>(send, Err(WireError::Malformed(e.to_string()))).await
}

impl Registry {
    pub(crate) fn unary<P, F, Fut>(&self, handler: F)
    where
        P: Protocol,
        F: Fn(Peer, P::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = P::Response> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let dispatch: Dispatch = Arc::new(move |peer, request, send, _recv| {
            let request = postcard::from_bytes::<P::Request>(request);
            let handler = handler.clone();
            Box::pin(async move {
                match request {
                    Ok(request) => {
                        let response = handler(peer, request).await;
                        answer(send, Ok(response)).await
                    }
                    Err(e) => refuse_malformed(send, peer, P::NAME, e).await,
                }
            })
        });
        self.insert(P::NAME, P::ACCESS, dispatch);
    }

    pub(crate) fn streaming<P, F, Fut>(&self, handler: F)
    where
        P: Protocol,
        F: Fn(Peer, P::Request, Opening<P>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let dispatch: Dispatch = Arc::new(move |peer, request, send, recv| {
            let request = postcard::from_bytes::<P::Request>(request);
            let handler = handler.clone();
            Box::pin(async move {
                match request {
                    Ok(request) => {
                        let opening = Opening { send, recv, _protocol: std::marker::PhantomData };
                        handler(peer, request, opening).await
                    }
                    Err(e) => refuse_malformed(send, peer, P::NAME, e).await,
                }
            })
        });
        self.insert(P::NAME, P::ACCESS, dispatch);
    }

    fn insert(&self, name: &'static str, access: Access, dispatch: Dispatch) {
        let previous = self.entries.write().expect("registry").insert(name, Entry { access, dispatch });
        assert!(previous.is_none(), "protocol {name} registered twice");
    }

    /// Drops every handler (and what they hold: handlers often hold the transport).
    pub(crate) fn clear(&self) {
        self.entries.write().expect("registry").clear();
        self.members.write().expect("registry").take();
    }

    pub(crate) fn set_members(&self, check: MemberCheck) {
        *self.members.write().expect("registry") = Some(check);
    }

    /// Routes an exchange whose first message is `first` to its handler, or answers why not.
    pub(crate) async fn dispatch(&self, peer: Peer, first: &[u8], send: quinn::SendStream, recv: quinn::RecvStream) {
        let (name, request) = match postcard::take_from_bytes::<&str>(first) {
            Ok(x) => x,
            Err(e) => return refuse_malformed(send, peer, "(unnamed)", e).await,
        };
        let found = {
            let entries = self.entries.read().expect("registry");
            entries.get(name).map(|e| (e.access, e.dispatch.clone()))
        };
        let Some((access, dispatch)) = found else {
            tracing::debug!(protocol = name, from = ?peer.node, "request for a protocol this node does not serve");
            return answer::<()>(send, Err(WireError::UnknownProtocol(name.to_string()))).await;
        };
        if let Err(refused) = self.admit(access, peer, name) {
            return answer::<()>(send, Err(refused)).await;
        }
        dispatch(peer, request, send, recv).await
    }

    fn admit(&self, access: Access, peer: Peer, protocol: &str) -> Result<(), WireError> {
        match (access, peer.node) {
            (Access::Anyone, _) => Ok(()),
            (_, None) => Err(WireError::Unauthenticated),
            (Access::Node, Some(_)) => Ok(()),
            (Access::Member, Some(node)) => {
                let member = self.members.read().expect("registry").as_ref().is_none_or(|check| check(node));
                if member {
                    return Ok(());
                }
                metrics::counter!("tessera_cluster_refused_requests_total").increment(1);
                tracing::warn!(from = node, protocol, "request from a node that is not in the catalog refused");
                Err(WireError::NotMember(node))
            }
        }
    }
}
