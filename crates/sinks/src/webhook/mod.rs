//! The Standard Webhooks sink (<https://www.standardwebhooks.com>): every event is one signed JSON POST.
//!
//! - [`config`]: [`WebhookConfig`] and [`PreviousSecret`] (URL, secrets and rotation, extra headers,
//!   timeouts, `allow_private_networks`) and their validation.
//! - [`signing`]: secrets (`whsec_…`), [`sign`], [`verify`] / [`verify_headers`] and [`generate_secret`].
//! - [`sink`]: [`WebhookSink`], which renders the body, signs it, sends it through the guarded client and
//!   classifies the outcome into an `AttemptReport`.

pub mod config;
pub mod signing;
pub mod sink;

#[cfg(test)]
mod tests;

pub use config::{PreviousSecret, WebhookConfig};
pub use signing::{
    DEFAULT_TOLERANCE, SecretError, VerifyError, WebhookSecret, generate_secret, sign, verify, verify_headers,
};
pub use sink::WebhookSink;
