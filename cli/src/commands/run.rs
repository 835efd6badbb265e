//! `lookout run`: the node in the foreground, until Ctrl-C (or SIGTERM).

use std::io::IsTerminal as _;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use lookout_node::api::{ApiError, ErrorCode, Event};
use lookout_node::control::{self, ControlSocket};
use lookout_node::node::StartError;
use lookout_node::{NodeConfig, NodeHandle};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::broadcast::error::RecvError;

use super::{Out, Outcome};
use crate::render::short;
use crate::session::Context;

pub use lookout_node::device::{PID_FILE, WIPING_FILE};
/// How long to wait for the network to report listen addresses.
const LISTEN_PATIENCE: Duration = Duration::from_secs(10);

/// `lookout run`.
pub async fn run(
    ctx: &Context,
    listen: &[String],
    peers: &[String],
    mdns: bool,
    sync_interval: u64,
    connections: usize,
    out: Out,
) -> Result<Outcome, ApiError> {
    if ctx.node_running().await {
        return Err(ApiError::new(
            ErrorCode::Busy,
            "a node is already running for this home (other commands use it; there is no need for a second)",
        ));
    }
    let peers = peers
        .iter()
        .map(|p| parse_addr(p))
        .collect::<Result<Vec<_>, _>>()?;
    let listen_given = listen
        .iter()
        .map(|p| parse_addr(p))
        .collect::<Result<Vec<_>, _>>()?;
    let replica = ctx.open_replica()?;
    let before = replica.status();
    if before.collective.is_none() {
        return Err(ApiError::new(
            ErrorCode::NoCollective,
            "this device is not in a collective yet: found one with `lookout collective create`, or join with `lookout join INVITE`",
        ));
    }
    let listen = if listen_given.is_empty() {
        default_listen(&replica.listen_addresses())
    } else {
        listen_given
    };
    let config = NodeConfig {
        listen,
        peers,
        mdns,
        sync_interval: Duration::from_secs(sync_interval.max(1)),
        member_connections: connections,
        ..NodeConfig::default()
    };
    let (handle, control) = start_node(ctx, replica, config).await?;
    let pid_path = ctx.home.join(PID_FILE);

    let result = serve(&handle, &before, out).await;
    handle.shutdown().await;
    drop(control);
    let _ = std::fs::remove_file(&pid_path);
    result?;
    if !out.json {
        if ctx.home.join(WIPING_FILE).exists() {
            out.text("Stopped: everything Lookout kept on this device is being erased (`lookout wipe`).\n");
        } else {
            out.text("Stopped. Alerts you post now wait on this device until you run it again.\n");
        }
    }
    Ok(Outcome::Done)
}

/// Start the node, serve its control socket beside it, and note the process id (so `wipe` can
/// stop it). The socket is removed when the returned [`ControlSocket`] is dropped.
async fn start_node(
    ctx: &Context,
    replica: lookout_node::replica::Replica,
    config: NodeConfig,
) -> Result<(NodeHandle, ControlSocket), ApiError> {
    let handle = lookout_node::start(replica, config)
        .await
        .map_err(start_error)?;
    let control = match control::serve(&control::socket_path(&ctx.home), handle.clone()).await {
        Ok(control) => control,
        Err(e) => {
            handle.shutdown().await;
            return Err(if e.kind() == std::io::ErrorKind::AddrInUse {
                ApiError::new(ErrorCode::Busy, "a node is already running for this home")
            } else {
                ApiError::new(
                    ErrorCode::Internal,
                    format!("cannot serve the control socket: {e}"),
                )
            });
        }
    };
    let _ = std::fs::write(ctx.home.join(PID_FILE), format!("{}\n", std::process::id()));
    Ok((handle, control))
}

/// Start the node the way `lookout run` does with no options (for `lookout ui`).
pub async fn start_default(
    ctx: &Context,
    replica: lookout_node::replica::Replica,
) -> Result<(NodeHandle, ControlSocket), ApiError> {
    if replica.status().collective.is_none() {
        return Err(ApiError::new(
            ErrorCode::NoCollective,
            "this device is not in a collective yet: found one with `lookout collective create`, or join with `lookout join INVITE`",
        ));
    }
    let config = NodeConfig {
        listen: default_listen(&replica.listen_addresses()),
        ..NodeConfig::default()
    };
    start_node(ctx, replica, config).await
}

/// Print where the node listens, then events, until a stop signal.
async fn serve(
    handle: &NodeHandle,
    before: &lookout_node::api::StatusView,
    out: Out,
) -> Result<(), ApiError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("cannot watch for signals: {e}"),
        )
    })?;
    let mut events = handle.watch().await?;
    let status = wait_listening(handle).await?;
    let peer = handle.peer_id();
    let addresses: Vec<String> = status
        .listening
        .iter()
        .map(|a| format!("{a}/p2p/{peer}"))
        .collect();
    if out.json {
        out.json(&serde_json::json!({
            "running": true,
            "peer_id": peer.to_string(),
            "listening": addresses,
        }))?;
    } else {
        let role = if before.is_moderator {
            "moderator of"
        } else if before.is_member {
            "member of"
        } else {
            "not yet admitted to"
        };
        // Output kept in a file or journal names neither the member nor the collective.
        let mut text = if std::io::stdout().is_terminal() {
            format!(
                "Lookout is running for {} ({role} \"{}\").\nPeer id: {peer}\nListening on:\n",
                out.style.bold(&before.name),
                before.collective.clone().unwrap_or_default()
            )
        } else {
            format!("Lookout is running ({role} the collective).\nPeer id: {peer}\nListening on:\n")
        };
        for address in &addresses {
            text.push_str(&format!("  {address}\n"));
        }
        text.push_str(
            "Alerts arrive while this runs; use the other commands in another terminal.\nPress Ctrl-C to stop.\n",
        );
        out.text(&text);
    }
    let mut removed = before.is_removed;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            event = events.recv() => match event {
                Ok(event) => {
                    announce(&event, out)?;
                    if matches!(event, Event::MembershipChanged { .. }) && !removed {
                        removed = handle.status().await?.is_removed;
                        if removed {
                            tell_removed(out)?;
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => {
                    return Err(ApiError::new(ErrorCode::Internal, "the node stopped unexpectedly"));
                }
            },
        }
    }
    Ok(())
}

/// One line per event for the person watching the node's terminal.
fn announce(event: &Event, out: Out) -> Result<(), ApiError> {
    // Where the output goes to a file or a service manager's journal (kept, readable later), no
    // alert contents: short ids and counts only.
    let private = std::io::stdout().is_terminal();
    if out.json {
        return match event {
            Event::Alert(alert) if !private => out.json(&serde_json::json!({
                "event": "alert",
                "id": short(&alert.id),
                "severity": alert.severity,
            })),
            _ => out.json(event),
        };
    }
    let now = lookout_node::replica::now();
    let clock = crate::when::date_time(now, out.style.zone);
    let clock = clock.rsplit(' ').nth(1).unwrap_or_default();
    let line = match event {
        Event::Alert(alert) if !private => format!(
            "{clock}  new alert {} {}: see `lookout alerts`\n",
            short(&alert.id),
            alert.severity.as_str().to_uppercase()
        ),
        Event::Alert(alert) => {
            let place = if alert.area.is_empty() {
                String::new()
            } else {
                format!(" in {}", alert.area)
            };
            format!(
                "{clock}  new alert {} {} {}{place}: see `lookout alerts`\n",
                short(&alert.id),
                out.style.severity(alert.severity),
                alert.category
            )
        }
        Event::Retracted { id } => format!("{clock}  alert {} was retracted\n", short(id)),
        Event::MembershipChanged { members } => {
            format!("{clock}  the collective now has {members} members\n")
        }
        Event::UnreadableKeyShare {
            signer,
            signer_name,
            epoch,
        } => format!(
            "{clock}  member {signer_name} ({}) sent you an unreadable key share for epoch {epoch}: your node asks other members for the key; moderators should look into it\n",
            short(signer)
        ),
    };
    out.text(&line);
    Ok(())
}

/// This device's identity was removed from the collective (by a moderator, or with its
/// self-revocation certificate): say so plainly, once.
fn tell_removed(out: Out) -> Result<(), ApiError> {
    if out.json {
        return out.json(&serde_json::json!({ "event": "removed" }));
    }
    out.text(&format!(
        "{} You were removed from the collective: this device no longer receives or sends alerts.\n\
         If this is a mistake, talk to a moderator; to take part again you need a new identity\n\
         (`lookout wipe`, then `lookout init` and a new join request).\n",
        out.style.warn("Removed.")
    ));
    Ok(())
}

/// The status once the listen addresses have come in: they arrive one by one, so wait until
/// the list has not changed for a moment.
async fn wait_listening(handle: &NodeHandle) -> Result<lookout_node::api::StatusView, ApiError> {
    const SETTLE: Duration = Duration::from_millis(300);
    let started = Instant::now();
    let mut last = handle.status().await?;
    let mut unchanged_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let status = handle.status().await?;
        if status.listening != last.listening {
            unchanged_since = Instant::now();
        }
        last = status;
        let settled = !last.listening.is_empty() && unchanged_since.elapsed() >= SETTLE;
        if settled || started.elapsed() > LISTEN_PATIENCE {
            return Ok(last);
        }
    }
}

/// All interfaces, on the ports used last time when they are free (so invites already handed
/// out keep working), else on ports the system picks.
fn default_listen(last: &[String]) -> Vec<Multiaddr> {
    let mut tcp = 0;
    let mut udp = 0;
    for address in last.iter().filter_map(|a| a.parse::<Multiaddr>().ok()) {
        let mut protocols = address.iter();
        while let Some(protocol) = protocols.next() {
            match protocol {
                Protocol::Tcp(port) if tcp == 0 => tcp = port,
                Protocol::Udp(port)
                    if udp == 0 && matches!(protocols.next(), Some(Protocol::QuicV1)) =>
                {
                    udp = port
                }
                _ => {}
            }
        }
    }
    if tcp != 0 && TcpListener::bind((Ipv4Addr::UNSPECIFIED, tcp)).is_err() {
        tcp = 0;
    }
    if udp != 0 && UdpSocket::bind((Ipv4Addr::UNSPECIFIED, udp)).is_err() {
        udp = 0;
    }
    vec![
        Multiaddr::empty()
            .with(Protocol::Ip4(Ipv4Addr::UNSPECIFIED))
            .with(Protocol::Tcp(tcp)),
        Multiaddr::empty()
            .with(Protocol::Ip4(Ipv4Addr::UNSPECIFIED))
            .with(Protocol::Udp(udp))
            .with(Protocol::QuicV1),
    ]
}

fn parse_addr(text: &str) -> Result<Multiaddr, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("'{text}' is not an address such as /ip4/192.168.1.20/tcp/4001"),
        )
    })
}

fn start_error(error: StartError) -> ApiError {
    match error {
        StartError::NoCollective => ApiError::new(ErrorCode::NoCollective, error.to_string()),
        StartError::Net(e) => ApiError::new(
            ErrorCode::InvalidInput,
            format!("cannot start networking: {e} (is the address or port already in use?)"),
        ),
        other => ApiError::new(
            ErrorCode::Internal,
            format!("cannot start the node: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_last_ports_are_reused_when_free() {
        let free_tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        let taken = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let taken_udp = taken.local_addr().unwrap().port();
        let last = vec![
            format!("/ip4/127.0.0.1/tcp/{free_tcp}"),
            format!("/ip4/127.0.0.1/udp/{taken_udp}/quic-v1"),
        ];
        let listen = default_listen(&last);
        assert_eq!(
            listen[0].to_string(),
            format!("/ip4/0.0.0.0/tcp/{free_tcp}")
        );
        // Someone else holds the UDP port: fall back to a port the system picks.
        assert_eq!(listen[1].to_string(), "/ip4/0.0.0.0/udp/0/quic-v1");
        assert_eq!(default_listen(&[])[0].to_string(), "/ip4/0.0.0.0/tcp/0");
    }
}
