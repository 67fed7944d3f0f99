//! `presenced` as an operator runs it: a config file in a directory, user commands, and their errors.

mod common;

use common::{PASSWORD, assert_one_line_error, presenced, setup, stdout};

#[test]
fn user_add_list_del_round_trip() {
    let dir = setup("domain = \"example.com\"\ndata_dir = \"db\"\n");
    let d = dir.path();
    let cfg = ["--config", "presenced.toml"];

    let o = presenced(
        d,
        &[
            &cfg[..],
            &["user", "add", "alice@example.com", "--password-stdin"],
        ]
        .concat(),
        &format!("{PASSWORD}\n"),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "added alice@example.com\n");

    let o = presenced(d, &[&cfg[..], &["user", "list"]].concat(), "");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "alice@example.com\n");

    let o = presenced(
        d,
        &[
            &cfg[..],
            &["user", "add", "alice@example.com", "--password", "x"],
        ]
        .concat(),
        "",
    );
    assert_one_line_error(&o, "already exists");

    let db = std::fs::read(d.join("db/presenced.redb")).expect("database file");
    assert!(
        !db.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()),
        "the password must not be stored"
    );

    let o = presenced(
        d,
        &[&cfg[..], &["user", "del", "alice@example.com"]].concat(),
        "",
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "deleted alice@example.com\n");

    let o = presenced(d, &[&cfg[..], &["user", "list"]].concat(), "");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "");

    let o = presenced(
        d,
        &[&cfg[..], &["user", "del", "alice@example.com"]].concat(),
        "",
    );
    assert_one_line_error(&o, "no such user");
}

#[test]
fn addresses_off_the_domain_are_refused() {
    let dir = setup("domain = \"example.com\"\ndata_dir = \"db\"\n");
    for jid in [
        "alice@other.org",
        "example.com",
        "not an address@example.com",
    ] {
        let o = presenced(
            dir.path(),
            &[
                "--config",
                "presenced.toml",
                "user",
                "add",
                jid,
                "--password",
                "x",
            ],
            "",
        );
        assert_one_line_error(&o, jid);
    }
}

#[test]
fn bad_configs_give_one_line_naming_the_file() {
    for (config, needle) in [
        ("domain = \"example.com\"\ncolour = \"blue\"\n", "colour"),
        ("domain = \"no such domain!\"\n", "domain"),
        ("[limits]\nmax_contacts = -1\n", "presenced.toml:2"),
    ] {
        let dir = setup(config);
        for args in [&["user", "list"][..], &["serve"][..]] {
            let o = presenced(
                dir.path(),
                &[&["--config", "presenced.toml"][..], args].concat(),
                "",
            );
            assert_one_line_error(&o, needle);
            assert_one_line_error(&o, "presenced.toml");
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let o = presenced(dir.path(), &["--config", "absent.toml", "user", "list"], "");
    assert_one_line_error(&o, "absent.toml");
}

#[test]
fn serve_refuses_a_data_dir_that_is_a_file() {
    let dir = setup("data_dir = \"presenced.toml\"\n");
    let o = presenced(dir.path(), &["--config", "presenced.toml", "serve"], "");
    assert_one_line_error(&o, "data directory");
}

#[test]
fn serve_refuses_a_busy_port_with_one_line() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = busy.local_addr().expect("address").port();
    let dir = setup(&format!(
        "domain = \"example.com\"\ndata_dir = \"db\"\n[xmpp]\nc2s_bind = \"127.0.0.1:{port}\"\nc2s_tls_bind = \"off\"\n[sip]\nbind = \"127.0.0.1:0\"\ntls_bind = \"off\"\n"
    ));
    let o = presenced(dir.path(), &["--config", "presenced.toml", "serve"], "");
    assert_one_line_error(&o, &format!("cannot listen on 127.0.0.1:{port}"));
}

#[test]
fn serve_refuses_an_unreadable_certificate_with_one_line() {
    let dir = setup(
        "domain = \"example.com\"\ndata_dir = \"db\"\n[xmpp]\nc2s_bind = \"127.0.0.1:0\"\nc2s_tls_bind = \"127.0.0.1:0\"\ntls_cert = \"missing.pem\"\ntls_key = \"missing-key.pem\"\n[sip]\nbind = \"127.0.0.1:0\"\ntls_bind = \"off\"\n",
    );
    let o = presenced(dir.path(), &["--config", "presenced.toml", "serve"], "");
    assert_one_line_error(&o, "cannot read the certificate from missing.pem");
}
