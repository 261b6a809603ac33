//! Connection settings: the URL, where the password comes from, and the two sessions the source opens
//! (a plain one for slots, publications and health queries; a replication one for the stream).

use super::PostgresSourceConfig;
use std::time::Duration;
use tokio_postgres::config::Host;

/// Session settings that make the text output of values predictable (see [`super::value`]).
pub const SESSION_OPTIONS: &str =
    "-c DateStyle=ISO -c TimeZone=UTC -c bytea_output=hex -c extra_float_digits=3 -c IntervalStyle=iso_8601";

/// `url` parsed, or why it is not usable.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, String> {
    let shown = super::redacted(url);
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "{shown:?} is not a PostgreSQL URL; expected postgres://user[:password]@host[:port]/database"
        ));
    }
    if let Some((_, query)) = url.split_once('?')
        && query.split('&').any(|kv| kv.starts_with("password="))
    {
        return Err("a password in the query string would be shown in views and logs; write it as postgres://user:password@host/database, or use password_env or password_file".into());
    }
    let config: tokio_postgres::Config = url.parse().map_err(|e| {
        format!("{shown:?} is not a PostgreSQL URL ({e}); expected postgres://user[:password]@host[:port]/database")
    })?;
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err("sslmode=require: this build has no TLS for PostgreSQL; use a server on a trusted network or a tunnel, with sslmode=disable".into());
    }
    if config.get_user().is_none() {
        return Err(format!("{shown:?} names no user; write postgres://user@host/database"));
    }
    if config.get_hosts().len() != 1 {
        return Err(format!("{shown:?}: expected exactly one host"));
    }
    if config.get_dbname().is_none() {
        return Err(format!(
            "{shown:?} names no database; write postgres://user@host/database (logical replication reads one database)"
        ));
    }
    Ok(config)
}

/// Where to connect, resolved at start (the password is read then, never logged).
#[derive(Clone)]
pub struct Target {
    /// The plain session's settings.
    pub plain: tokio_postgres::Config,
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
}

impl Target {
    /// Resolves the URL and the password.
    pub fn resolve(config: &PostgresSourceConfig) -> Result<Self, String> {
        let mut plain = parse_url(&config.url)?;
        let password = match plain.get_password() {
            Some(p) => String::from_utf8(p.to_vec()).map_err(|_| "url: the password is not UTF-8".to_owned())?,
            None => match (&config.password_env, &config.password_file) {
                (Some(var), _) if std::env::var_os(var).is_some() => {
                    std::env::var(var).map_err(|_| format!("password_env: the variable {var} is not UTF-8"))?
                }
                (Some(var), None) => {
                    return Err(format!(
                        "password_env: the variable {var} is not set; export it or use password_file"
                    ));
                }
                (_, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| format!("password_file: cannot read {}: {e}", path.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
                (None, None) => String::new(),
            },
        };
        if !password.is_empty() {
            plain.password(password.as_str());
        }
        plain.options(SESSION_OPTIONS);
        plain.application_name("tributary");
        plain.connect_timeout(Duration::from_secs(10));
        let (host, port) = match (&plain.get_hosts()[0], plain.get_ports().first()) {
            (Host::Tcp(h), p) => (h.clone(), p.copied().unwrap_or(5432)),
            (Host::Unix(path), p) => (path.display().to_string(), p.copied().unwrap_or(5432)),
        };
        Ok(Self {
            host,
            port,
            user: plain.get_user().unwrap_or_default().to_owned(),
            password,
            database: plain.get_dbname().unwrap_or_default().to_owned(),
            plain,
        })
    }

    /// Opens the plain session.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = self.plain.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "postgres source: plain session ended");
            }
        });
        Ok(client)
    }

    /// The replication session's settings of source `name`, starting after `start`.
    pub fn session(
        &self,
        name: &str,
        config: &PostgresSourceConfig,
        start: super::pgoutput::Lsn,
        streaming: bool,
    ) -> super::client::SessionConfig {
        super::client::SessionConfig {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: self.password.clone(),
            database: self.database.clone(),
            application_name: format!("tributary-{name}"),
            options: SESSION_OPTIONS.into(),
            slot: config.slot.clone(),
            publication: config.publication.clone(),
            streaming,
            start,
            status_interval: Duration::from_millis(config.status_interval_ms),
        }
    }
}
