//! NATS security: user/password, token and TLS servers. Functions connect with the matching
//! configuration; with wrong credentials they fail fast with one clear line and a non-zero
//! exit; secrets never appear in logs.

use std::process::Command;
use std::time::Duration;
use userstats_tests::*;

const SECRET: &str = "s3cr3t-Pa55";

/// Waits for a function to exit; its exit code.
async fn exit_code(f: &mut FunctionProcess) -> Option<i32> {
    for _ in 0..200 {
        if let Some(code) = f.exited() {
            return Some(code);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A temp dir with a config file for `nats` with these `[nats]` settings, and its path.
fn configured(tag: &str, nats: &NatsServer, nats_toml: &str) -> (TempDir, String) {
    let dir = TempDir::new(tag);
    let config = dir.file("c.toml");
    std::fs::write(
        &config,
        format!("[nats]\nservers = [\"{}\"]\n{nats_toml}\n[database]\npath = \"{}\"\n", nats.url(), dir.file("u.db")),
    )
    .unwrap();
    (dir, config)
}

/// Starts ingest-chat with `[nats]` settings and checks it registers (seen through `client`).
async fn registers(nats: &NatsServer, client: &async_nats::Client, nats_toml: &str) -> (FunctionProcess, TempDir) {
    let (dir, config) = configured("sec", nats, nats_toml);
    let f = FunctionProcess::spawn("ingest-chat", &config, &dir, &[]);
    if let Err(e) = wait_registered(client, "userstats-ingest-chat", Duration::from_secs(15)).await {
        panic!("{e:#}\n{}", f.log_text());
    }
    (f, dir)
}

async fn refused(nats: &NatsServer, nats_toml: &str) -> (Option<i32>, String) {
    let (dir, config) = configured("secbad", nats, nats_toml);
    let mut f = FunctionProcess::spawn("ingest-chat", &config, &dir, &[]);
    let code = exit_code(&mut f).await;
    (code, f.log_text())
}

#[tokio::test(flavor = "multi_thread")]
async fn user_and_password() {
    let nats = NatsServer::start_with(&["--user", "stats", "--pass", SECRET]);
    let client = async_nats::ConnectOptions::with_user_and_password("stats".into(), SECRET.into())
        .connect(nats.url())
        .await
        .unwrap();
    let (ok, _dir) = registers(&nats, &client, &format!("user = \"stats\"\npassword = \"{SECRET}\"")).await;
    assert!(!ok.log_text().contains(SECRET), "the password is never logged");
    let (code, log) = refused(&nats, "user = \"stats\"\npassword = \"wrong-one\"").await;
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("refused our credentials"), "{log}");
    assert!(!log.contains("wrong-one"), "the password is never logged: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn token() {
    let nats = NatsServer::start_with(&["--auth", SECRET]);
    let client = async_nats::ConnectOptions::with_token(SECRET.into()).connect(nats.url()).await.unwrap();
    let (ok, _dir) = registers(&nats, &client, &format!("token = \"{SECRET}\"")).await;
    assert!(!ok.log_text().contains(SECRET));
    let (code, log) = refused(&nats, "token = \"nope\"").await;
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("refused our credentials"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_self_signed_ca() {
    let certs = TempDir::new("tls");
    let p = |f: &str| certs.file(f);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    std::fs::write(p("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("san.ext"),
        "-out",
        &p("server.pem"),
    ]);
    let nats = NatsServer::start_with(&["--tls", "--tlscert", &p("server.pem"), "--tlskey", &p("server.key")]);
    let client = async_nats::ConnectOptions::new()
        .add_root_certificates(p("ca.pem").into())
        .require_tls(true)
        .connect(nats.url())
        .await
        .unwrap();
    let _running = registers(&nats, &client, &format!("tls_ca = \"{}\"", p("ca.pem"))).await;
    // Without the CA the server's certificate is not trusted: a clear TLS error, exit 1.
    let (code, log) = refused(&nats, "tls_required = true").await;
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("TLS"), "{log}");
}
