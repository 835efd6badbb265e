//! The control socket against a running node: requests, errors, watch, hostile lines.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_node::api::*;
use lookout_node::control::{socket_path, Connection};
use lookout_node::replica::Replica;
use lookout_node::NodeConfig;
use lookout_protocol::content::{Category, Severity};
use lookout_protocol::membership::Policy;
use lookout_protocol::passphrase::KdfParams;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn draft() -> PostDraft {
    PostDraft {
        category: Category::Threats,
        severity: Severity::Medium,
        description: "followed her home".into(),
        phones: vec![],
        phones_as_typed: false,
        plates: vec![],
        names: vec!["Dan".into()],
        handles: vec![],
        physical: String::new(),
        area: "Market".into(),
        incident_time: None,
        expires_in_days: Some(3),
        language: "en".into(),
        on_behalf: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_socket_serves_requests_errors_and_events() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ana");
        let (mut replica, _) = Replica::create(&home, b"pw", "Ana", KdfParams::TESTING).unwrap();
        replica.create_collective("C", Policy::default()).unwrap();
        let config = NodeConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            mdns: false,
            ..NodeConfig::default()
        };
        let node = lookout_node::start(replica, config).await.unwrap();
        let control = lookout_node::control::serve(&socket_path(&home), node.clone())
            .await
            .unwrap();
        let mode = std::fs::metadata(socket_path(&home)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);

        let mut watcher = Connection::connect(&home).await.expect("node is running");
        watcher.watch().await.unwrap();
        let mut client = Connection::connect(&home).await.unwrap();
        let Response::Posted { id } = client.request(Request::Post(draft())).await.unwrap() else {
            panic!("not posted")
        };
        match watcher.next_event().await.unwrap() {
            Event::Alert(view) => assert_eq!(view.id, id),
            other => panic!("unexpected event {other:?}"),
        }
        // Requests whose own fields include `id` go through the socket.
        client
            .request(Request::Retract {
                id: id[..8].into(),
                reason: "resolved".into(),
            })
            .await
            .unwrap();
        let err = client
            .request(Request::Retract {
                id: "ffffffff".into(),
                reason: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownAlert);
        let Response::Status(status) = client.request(Request::Status).await.unwrap() else {
            panic!()
        };
        assert!(status.running && status.is_moderator);

        // Hostile lines: garbage, a wrong version, an over-long line.
        let mut raw = tokio::net::UnixStream::connect(socket_path(&home))
            .await
            .unwrap();
        raw.write_all(b"{not json\n{\"v\":99,\"id\":1,\"request\":{\"cmd\":\"status\"}}\n")
            .await
            .unwrap();
        let (read, mut write) = raw.into_split();
        let mut lines = BufReader::new(read).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        assert!(first.contains("invalid-input"), "{first}");
        let second = lines.next_line().await.unwrap().unwrap();
        assert!(second.contains("unsupported"), "{second}");
        // The node answers and hangs up as soon as the line passes its limit, so the rest of
        // this write may meet a closed socket (broken pipe): that is the node doing its job.
        let sent = async {
            write.write_all(&vec![b'x'; 70 * 1024]).await?;
            write.write_all(b"\n").await
        }
        .await;
        if let Err(e) = sent {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        let third = lines.next_line().await.unwrap().unwrap();
        assert!(third.contains("too long"), "{third}");

        // The node still answers.
        assert!(node.status().await.unwrap().running);
        node.shutdown().await;
        drop(control);
        assert!(
            !socket_path(&home).exists(),
            "socket removed when its server is dropped"
        );
    })
    .await
    .expect("timed out");
}
