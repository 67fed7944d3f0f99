//! The user's own presence settings: the three switches of the policy that change what watchers see rather than
//! who may see it — "do not disturb while on the phone", "do not disturb while in a meeting" and availability
//! sharing (DESIGN §2). A session reads and edits them without touching the allow and block lists, and every
//! change goes through `set_policy`, so it is stored, the presence is recomposed and watchers whose view flips
//! are told, exactly as for an administrator's policy change.

use super::Engine;
use crate::feature::Answer;
use crate::feature::settings::Change as SettingsChange;
use crate::session::SessionId;
use crate::stanza::RequestId;

impl Engine {
    pub(super) fn presence_settings_get(&mut self, id: SessionId, request: RequestId) {
        let Some(user) = self.sessions.get(&id) else {
            return;
        };
        let Some(u) = self.users.get(user) else {
            return;
        };
        let settings = u.policy.presence_settings();
        self.answer(id, request, Answer::Settings(settings));
    }

    pub(super) fn presence_settings_set(
        &mut self,
        id: SessionId,
        request: RequestId,
        change: SettingsChange,
    ) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let Some(u) = self.users.get(&user) else {
            return;
        };
        let mut policy = u.policy.clone();
        // Only the switches named in the request change: a client that knows one of them must not reset the others.
        if let Some(v) = change.dnd_on_phone {
            policy.dnd_on_phone = v;
        }
        if let Some(v) = change.dnd_in_meeting {
            policy.dnd_in_meeting = v;
        }
        if let Some(v) = change.share_availability {
            policy.share_availability = v;
        }
        // An unchanged policy is neither written nor recomposed: repeating a setting costs nothing and tells nobody.
        if policy != u.policy {
            self.set_policy(&user, policy);
        }
        self.answer(id, request, Answer::Done);
    }
}
