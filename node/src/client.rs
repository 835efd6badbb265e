//! One typed client for the node's API: a method per [`Request`], each returning the answer's
//! own type, so no caller matches on [`Response`] variants.
//!
//! The same client runs over every way of reaching a replica ([`Transport`]): a running node's
//! control socket ([`crate::control::Connection`]), a node started in this process
//! ([`crate::NodeHandle`]) or a store opened directly ([`Replica`]). Each transport implements
//! the trait beside its own type, so this module depends on the replica only. The CLI and the web interface use
//! it; a reply of the wrong kind (a node of another version) becomes an [`ApiError`] with
//! [`ErrorCode::Unsupported`].
//!
//! ```no_run
//! # async fn example(home: &std::path::Path) -> Result<(), lookout_node::api::ApiError> {
//! use lookout_node::client::Client;
//! use lookout_node::control::Connection;
//!
//! let Some(connection) = Connection::connect(home).await else { return Ok(()) };
//! let mut client = Client::new(connection);
//! let status = client.status().await?;
//! println!("{} members", status.members);
//! # Ok(()) }
//! ```

use std::future::Future;

use crate::api::{
    AlertFilter, AlertView, ApiError, ErrorCode, MailboxesView, MembersView, PostDraft,
    ProposalView, Request, Response, StatusView, MAX_PAGE,
};
use crate::replica::Replica;

/// A way to have a [`Request`] executed.
pub trait Transport {
    /// Execute one request and return the node's answer.
    fn execute(
        &mut self,
        request: Request,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send;
}

impl Transport for Replica {
    fn execute(
        &mut self,
        request: Request,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send {
        std::future::ready(Replica::execute(self, request))
    }
}

impl<T: Transport + Send> Transport for &mut T {
    fn execute(
        &mut self,
        request: Request,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send {
        (**self).execute(request)
    }
}

/// What a revocation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// The member removed (hex id).
    pub member: String,
    /// The new epoch that excludes them, if this node rotated (short id).
    pub epoch: Option<String>,
}

/// The typed client over a [`Transport`].
pub struct Client<T> {
    transport: T,
}

impl<T: Transport> Client<T> {
    /// A client sending its requests through `transport`.
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    /// The transport, for the few operations that have no [`Request`].
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Give the transport back.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// This device, its collective and its node.
    pub async fn status(&mut self) -> Result<StatusView, ApiError> {
        match self.transport.execute(Request::Status).await? {
            Response::Status(view) => Ok(view),
            other => Err(unexpected(&other)),
        }
    }

    /// Current and removed members.
    pub async fn members(&mut self) -> Result<MembersView, ApiError> {
        match self.transport.execute(Request::Members).await? {
            Response::Members(view) => Ok(view),
            other => Err(unexpected(&other)),
        }
    }

    /// Proposals waiting for approvals.
    pub async fn pending(&mut self) -> Result<Vec<ProposalView>, ApiError> {
        match self.transport.execute(Request::Pending).await? {
            Response::Pending { proposals } => Ok(proposals),
            other => Err(unexpected(&other)),
        }
    }

    /// Live alerts matching `filter`, newest first ([`crate::api::listing_order`]).
    ///
    /// Follows the node's pages ([`Request::AlertsPage`]) to the end.
    pub async fn alerts(&mut self, filter: AlertFilter) -> Result<Vec<AlertView>, ApiError> {
        self.all_pages(|after| Request::AlertsPage {
            filter: filter.clone(),
            after,
            limit: MAX_PAGE,
        })
        .await
    }

    /// One page of live alerts: up to `limit`, after the cursor `after`; and the next cursor.
    pub async fn alerts_page(
        &mut self,
        filter: AlertFilter,
        after: Option<String>,
        limit: u32,
    ) -> Result<(Vec<AlertView>, Option<String>), ApiError> {
        self.alert_page(Request::AlertsPage {
            filter,
            after,
            limit,
        })
        .await
    }

    /// Alerts naming this phone number, plate, handle or name (as typed). Follows the node's
    /// pages ([`Request::CheckPage`]) to the end.
    pub async fn check(&mut self, term: impl Into<String>) -> Result<Vec<AlertView>, ApiError> {
        let term = term.into();
        self.all_pages(|after| Request::CheckPage {
            term: term.clone(),
            after,
            limit: MAX_PAGE,
        })
        .await
    }

    /// Post an alert; returns its id (hex).
    pub async fn post(&mut self, draft: PostDraft) -> Result<String, ApiError> {
        self.posted(Request::Post(draft)).await
    }

    /// Withdraw an alert (author or moderator); returns the retraction's id.
    pub async fn retract(
        &mut self,
        id: impl Into<String>,
        reason: impl Into<String>,
    ) -> Result<String, ApiError> {
        self.posted(Request::Retract {
            id: id.into(),
            reason: reason.into(),
        })
        .await
    }

    /// "This happened to me too"; returns the corroboration's id.
    pub async fn corroborate(
        &mut self,
        id: impl Into<String>,
        note: impl Into<String>,
    ) -> Result<String, ApiError> {
        self.posted(Request::Corroborate {
            id: id.into(),
            note: note.into(),
        })
        .await
    }

    /// Approve a join request code, or an existing proposal by id prefix.
    pub async fn approve(&mut self, target: impl Into<String>) -> Result<ProposalView, ApiError> {
        self.proposal(Request::Approve {
            target: target.into(),
        })
        .await
    }

    /// Propose making a member a moderator.
    pub async fn promote(&mut self, member: impl Into<String>) -> Result<ProposalView, ApiError> {
        self.proposal(Request::Promote {
            member: member.into(),
        })
        .await
    }

    /// Propose taking a member's moderator rights away.
    pub async fn demote(&mut self, member: impl Into<String>) -> Result<ProposalView, ApiError> {
        self.proposal(Request::Demote {
            member: member.into(),
        })
        .await
    }

    /// Remove a member (moderators).
    pub async fn revoke(
        &mut self,
        member: impl Into<String>,
        reason: impl Into<String>,
    ) -> Result<Revoked, ApiError> {
        self.revoked(Request::Revoke {
            member: member.into(),
            reason: reason.into(),
        })
        .await
    }

    /// Publish a self-revocation certificate.
    pub async fn publish_revocation(
        &mut self,
        certificate: impl Into<String>,
    ) -> Result<Revoked, ApiError> {
        self.revoked(Request::PublishRevocation {
            certificate: certificate.into(),
        })
        .await
    }

    /// An invite code for an admitted member.
    pub async fn invite(&mut self) -> Result<String, ApiError> {
        match self.transport.execute(Request::Invite).await? {
            Response::Invite { code } => Ok(code),
            other => Err(unexpected(&other)),
        }
    }

    /// Moderators: propose the mailbox of a pairing code (`LKMAILBOX2-...`), or approve the
    /// pending proposal for it.
    pub async fn mailbox_add(&mut self, code: impl Into<String>) -> Result<ProposalView, ApiError> {
        self.proposal(Request::MailboxAdd { code: code.into() })
            .await
    }

    /// The collective's mailboxes: current, pending, removed.
    pub async fn mailboxes(&mut self) -> Result<MailboxesView, ApiError> {
        match self.transport.execute(Request::Mailboxes).await? {
            Response::Mailboxes(view) => Ok(view),
            other => Err(unexpected(&other)),
        }
    }

    /// Moderators: remove a mailbox by id or unique id prefix; returns its full id (hex).
    pub async fn mailbox_remove(&mut self, mailbox: impl Into<String>) -> Result<String, ApiError> {
        match self
            .transport
            .execute(Request::MailboxRemove {
                mailbox: mailbox.into(),
            })
            .await?
        {
            Response::MailboxRemoved { mailbox } => Ok(mailbox),
            other => Err(unexpected(&other)),
        }
    }

    async fn alert_page(
        &mut self,
        request: Request,
    ) -> Result<(Vec<AlertView>, Option<String>), ApiError> {
        match self.transport.execute(request).await? {
            Response::AlertsPage { alerts, next } => Ok((alerts, next)),
            other => Err(unexpected(&other)),
        }
    }

    /// Every page of a listing, in order.
    async fn all_pages(
        &mut self,
        request: impl Fn(Option<String>) -> Request,
    ) -> Result<Vec<AlertView>, ApiError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let (alerts, next) = self.alert_page(request(after.take())).await?;
            out.extend(alerts);
            match next {
                Some(cursor) => after = Some(cursor),
                None => {
                    // The node's pages are by date, then id; within a second, the order the
                    // alerts were posted in.
                    out.sort_by(crate::api::listing_order);
                    return Ok(out);
                }
            }
        }
    }

    async fn posted(&mut self, request: Request) -> Result<String, ApiError> {
        match self.transport.execute(request).await? {
            Response::Posted { id } => Ok(id),
            other => Err(unexpected(&other)),
        }
    }

    async fn proposal(&mut self, request: Request) -> Result<ProposalView, ApiError> {
        match self.transport.execute(request).await? {
            Response::Proposal(view) => Ok(view),
            other => Err(unexpected(&other)),
        }
    }

    async fn revoked(&mut self, request: Request) -> Result<Revoked, ApiError> {
        match self.transport.execute(request).await? {
            Response::Revoked { member, epoch } => Ok(Revoked { member, epoch }),
            other => Err(unexpected(&other)),
        }
    }
}

/// An answer of the wrong kind (a node of another version).
fn unexpected(response: &Response) -> ApiError {
    let kind = serde_json::to_value(response)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_default();
    ApiError::new(
        ErrorCode::Unsupported,
        format!(
            "the node answered with an unexpected '{kind}': is it a different Lookout version?"
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Answers every request with the same canned response.
    struct Canned(Response);

    impl Transport for Canned {
        fn execute(
            &mut self,
            _request: Request,
        ) -> impl Future<Output = Result<Response, ApiError>> + Send {
            std::future::ready(Ok(self.0.clone()))
        }
    }

    #[tokio::test]
    async fn an_answer_of_the_wrong_kind_is_a_typed_error() {
        let mut client = Client::new(Canned(Response::Watching));
        let error = client.status().await.unwrap_err();
        assert_eq!(error.code, ErrorCode::Unsupported);
        assert!(error.message.contains("'watching'"), "{}", error.message);
        let error = client.post(draft()).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::Unsupported);
    }

    #[tokio::test]
    async fn each_method_returns_its_own_answer() {
        let mut client = Client::new(Canned(Response::Posted { id: "ab12".into() }));
        assert_eq!(client.retract("ab", "dup").await.unwrap(), "ab12");
        let mut client = Client::new(Canned(Response::Revoked {
            member: "cd".into(),
            epoch: Some("e1".into()),
        }));
        assert_eq!(
            client.revoke("Bea", "left").await.unwrap(),
            Revoked {
                member: "cd".into(),
                epoch: Some("e1".into())
            }
        );
    }

    fn draft() -> PostDraft {
        PostDraft {
            category: lookout_protocol::content::Category::Violence,
            severity: lookout_protocol::content::Severity::High,
            description: "x".into(),
            phones: vec![],
            phones_as_typed: false,
            plates: vec![],
            names: vec![],
            handles: vec![],
            physical: String::new(),
            area: String::new(),
            incident_time: None,
            expires_in_days: None,
            language: String::new(),
            on_behalf: false,
        }
    }
}
