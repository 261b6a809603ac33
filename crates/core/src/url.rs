//! Showing a URL without its secret, for views, logs, errors and `describe`: the sinks' destinations,
//! the `postgres` source's server and the EVM source's providers use the same rule.

/// What a lone userinfo (`scheme://name@host`, no `:`) is in a scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoneUserinfo {
    /// A user name (PostgreSQL, Redis): shown.
    User,
    /// A token (NATS, HTTP): hidden as a whole.
    Token,
}

/// `url` with its password replaced by `***` (`scheme://user:***@host/…`), and a lone userinfo shown or
/// hidden as `lone` says. Anything after the authority (`/`, `?`, `#`) is kept; a text that is not a URL
/// is returned as is.
pub fn redacted_url(url: &str, lone: LoneUserinfo) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let shown = match (userinfo.split_once(':'), lone) {
        (Some((user, _)), _) => format!("{user}:***"),
        (None, LoneUserinfo::User) => userinfo.to_owned(),
        (None, LoneUserinfo::Token) => "***".to_owned(),
    };
    format!("{scheme}://{shown}@{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::{LoneUserinfo::*, redacted_url};

    #[test]
    fn passwords_and_tokens_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redacted_url("https://u:p@h.example/x?y", Token),
            "https://u:***@h.example/x?y"
        );
        assert_eq!(redacted_url("https://tok@h.example", Token), "https://***@h.example");
        assert_eq!(
            redacted_url("postgres://u@127.0.0.1/app", User),
            "postgres://u@127.0.0.1/app"
        );
        assert_eq!(
            redacted_url("redis://:secret@127.0.0.1", User),
            "redis://:***@127.0.0.1"
        );
        assert_eq!(redacted_url("postgres://u:s@h?x=@y", User), "postgres://u:***@h?x=@y");
        assert_eq!(redacted_url("https://h.example/a@b", Token), "https://h.example/a@b");
        assert_eq!(redacted_url("not a url", Token), "not a url");
    }
}
