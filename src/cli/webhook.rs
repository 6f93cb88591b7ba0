//! The webhook flags of `build`, `sync` and `notify`: one message to the team per run.

use anyhow::Result;
use clap::Args;

use mm_pkg::notify::{Notify, Webhook};

/// Telling the team through a Mattermost incoming webhook (`build` and `sync`).
#[derive(Args)]
pub struct NotifyArgs {
    /// Mattermost incoming webhook that gets one message per run. The URL is a secret: it is
    /// never printed, only its host [env: MM_PKG_WEBHOOK_URL].
    #[arg(
        long,
        env = "MM_PKG_WEBHOOK_URL",
        hide_env_values = true,
        hide_env = true
    )]
    webhook: Option<String>,
    /// Channel to post in instead of the webhook's own (`town-square`, `@user`).
    #[arg(long, requires = "webhook")]
    webhook_channel: Option<String>,
    /// Icon of the post (an http:// or https:// URL).
    #[arg(long, requires = "webhook")]
    webhook_icon_url: Option<String>,
    /// When to post: `changes` (something was built or failed), `always` (also "nothing
    /// new"), `failures` (only when something failed).
    #[arg(long, default_value = "changes", value_parser = ["changes", "always", "failures"])]
    notify: String,
}

impl NotifyArgs {
    /// The checked webhook (before any work is done), and the policy.
    pub fn webhook(&self) -> Result<(Option<Webhook>, Notify)> {
        let hook = match self.webhook.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Some(Webhook::new(
                url,
                self.webhook_channel.as_deref(),
                self.webhook_icon_url.as_deref(),
            )?),
            _ => None,
        };
        Ok((hook, self.notify.parse()?))
    }
}
