//! A SOCKS5 client for `proxy = "socks5://127.0.0.1:9050"` (RFC 1928, no authentication, `CONNECT` by
//! host name so that the proxy resolves `.onion`, `.i2p` and `.loki` names itself).

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where the proxy listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyAddr {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl ProxyAddr {
    /// Parses `socks5://host:port` (or `socks5h://`: names are always resolved by the proxy).
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = (s.strip_prefix("socks5://"))
            .or_else(|| s.strip_prefix("socks5h://"))
            .ok_or_else(|| format!("{s:?}: expected socks5://host:port (a SOCKS5 proxy such as Tor's)"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: expected socks5://host:port, with the port"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: the port is not 1 to 65535"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['@', '/']) {
            return Err(format!("{s:?}: expected socks5://host:port, without a user or path"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

/// Opens a connection to `host:port` through the proxy, within `timeout`.
pub async fn connect(proxy: &ProxyAddr, host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    tokio::time::timeout(timeout, handshake(proxy, host, port))
        .await
        .map_err(|_| format!("the proxy {}:{} did not connect in time", proxy.host, proxy.port))?
}

async fn handshake(proxy: &ProxyAddr, host: &str, port: u16) -> Result<TcpStream, String> {
    let at = format!("proxy {}:{}", proxy.host, proxy.port);
    let mut s = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| format!("{at}: {e}"))?;
    let io = |e: std::io::Error| format!("{at}: {e}");
    s.write_all(&[5, 1, 0]).await.map_err(io)?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.map_err(io)?;
    if choice != [5, 0] {
        return Err(format!(
            "{at} does not offer SOCKS5 without authentication (answered {choice:?})"
        ));
    }
    let name = host.as_bytes();
    if name.len() > 255 {
        return Err(format!(
            "{host}: a host name longer than 255 bytes cannot go through SOCKS5"
        ));
    }
    let mut req = vec![5, 1, 0, 3, name.len() as u8];
    req.extend_from_slice(name);
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(io)?;
    if head[1] != 0 {
        return Err(format!(
            "{at} refused the connection to {host}:{port}: {}",
            reply_text(head[1])
        ));
    }
    // The bound address: skip it.
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await.map_err(io)?;
            len[0] as usize
        }
        other => return Err(format!("{at} answered an unknown address type {other}")),
    };
    let mut rest = vec![0u8; skip + 2];
    s.read_exact(&mut rest).await.map_err(io)?;
    Ok(s)
}

fn reply_text(code: u8) -> &'static str {
    match code {
        1 => "general failure",
        2 => "not allowed by its rules",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_addresses() {
        assert_eq!(
            ProxyAddr::parse("socks5://127.0.0.1:9050").unwrap(),
            ProxyAddr {
                host: "127.0.0.1".into(),
                port: 9050
            }
        );
        assert_eq!(ProxyAddr::parse("socks5h://[::1]:9050/").unwrap().host, "::1");
        for bad in [
            "http://127.0.0.1:9050",
            "socks5://127.0.0.1",
            "socks5://:9050",
            "socks5://u@h:1",
            "socks5://h:0",
        ] {
            assert!(ProxyAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
