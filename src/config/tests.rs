use super::*;

#[test]
fn database_urls_parse_with_clear_errors() {
    assert_eq!(
        "sqlite://x.db".parse::<DatabaseUrl>(),
        Ok(DatabaseUrl::Sqlite("x.db".into()))
    );
    assert_eq!(
        "sqlite:///var/lib/mb.db".parse::<DatabaseUrl>(),
        Ok(DatabaseUrl::Sqlite("/var/lib/mb.db".into()))
    );
    let err = "mysql://x".parse::<DatabaseUrl>().unwrap_err();
    assert!(err.contains("unsupported database URL"), "{err}");
    assert_eq!(
        DatabaseUrl::Postgres("postgres://bob:secret@db/x".into()).to_string(),
        "postgres://bob:***@db/x"
    );
}

#[test]
fn public_urls_lose_the_trailing_slash() {
    assert_eq!(
        "https://t.example.com/"
            .parse::<PublicUrl>()
            .unwrap()
            .as_str(),
        "https://t.example.com"
    );
    assert!("ftp://x".parse::<PublicUrl>().is_err());
    assert!("https://".parse::<PublicUrl>().is_err());
    assert!("https://x/?a".parse::<PublicUrl>().is_err());
}

#[test]
fn config_file_fills_what_flags_leave_open() {
    let file: Settings = toml::from_str(
        r#"
        listen = "0.0.0.0:9000"
        public-url = "https://t.example.com"
        trusted-proxy = ["10.0.0.0/8", "192.168.1.1"]
        client-ip = "full"
        "#,
    )
    .unwrap();
    let flags = Settings {
        listen: Some("127.0.0.1:1".parse().unwrap()),
        ..Settings::default()
    };
    let r = flags.or_file(file).resolve();
    assert_eq!(r.listen, "127.0.0.1:1".parse().unwrap());
    assert_eq!(r.public_url.unwrap().as_str(), "https://t.example.com");
    assert_eq!(r.trusted_proxies.nets.len(), 2);
    assert_eq!(r.client_ip, ClientIpMode::Full);
    assert_eq!(r.database, DatabaseUrl::default());
}

#[test]
fn config_file_errors_name_the_problem() {
    let err = toml::from_str::<Settings>("listen = \"nowhere\"").unwrap_err();
    assert!(err.to_string().contains("listen"), "{err}");
    let err = toml::from_str::<Settings>("lisen = \"x\"").unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    let err = toml::from_str::<Settings>("trusted-proxy = [\"banana\"]").unwrap_err();
    assert!(err.to_string().contains("banana"), "{err}");
}

#[test]
fn the_journal_lives_next_to_the_database_and_keeps_its_old_name() {
    let r = toml::from_str::<Settings>("database = \"sqlite:///var/lib/mb/mb.db\"")
        .unwrap()
        .resolve();
    assert_eq!(
        r.journal_dir,
        PathBuf::from("/var/lib/mb/mailbeacon-journal")
    );
    assert_eq!(r.max_journal_bytes, 1024 << 20);
    let r = toml::from_str::<Settings>("spool-dir = \"old\"\nmax-journal-mb = 5")
        .unwrap()
        .resolve();
    assert_eq!(
        (r.journal_dir, r.max_journal_bytes),
        (PathBuf::from("old"), 5 << 20)
    );
}

#[test]
fn resolve_pins_a_name_to_an_address_with_clear_errors() {
    assert_eq!(
        Pinned::parse("T.Example.com=203.0.113.7"),
        Ok(Pinned {
            name: "t.example.com".into(),
            addr: "203.0.113.7".parse().unwrap(),
        })
    );
    assert!(
        Pinned::parse("t.example.com")
            .unwrap_err()
            .contains("is not NAME=ADDR")
    );
    assert!(
        Pinned::parse("t.example.com=tracker")
            .unwrap_err()
            .contains("'tracker' in 't.example.com=tracker' is not an IP address")
    );
    let file = Settings::from_toml("https-listen = \"0.0.0.0:443\"\nresolve = [\"a.test=::1\"]")
        .unwrap()
        .resolve();
    let acme = file.acme.expect("--https-listen turns ACME on");
    assert_eq!(acme.directory, crate::acme::LETS_ENCRYPT);
    assert_eq!(acme.retry_base, std::time::Duration::from_secs(60));
    assert_eq!(
        file.resolve[0].addr,
        "::1".parse::<std::net::IpAddr>().unwrap()
    );
}
