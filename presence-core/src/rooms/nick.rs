//! Nicknames as the room keeps them: enforced with the PRECIS Nickname profile (RFC 8266, which XEP-0045 §7.2.1
//! points to), so "Bob " and "Bob" are one occupant. When enforcement changes what a user asked for, the room
//! tells them with status 210.

use precis_profiles::Nickname;
use precis_profiles::precis_core::profile::Profile;

/// The nickname the room uses for `asked`, or `None` when it is not a nickname at all (empty, or holding
/// characters the profile forbids).
pub fn enforce(asked: &str) -> Option<String> {
    Nickname::new()
        .enforce(asked)
        .ok()
        .map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_are_trimmed_and_collapsed_and_case_is_kept() {
        assert_eq!(enforce("  Bob   Smith ").as_deref(), Some("Bob Smith"));
        assert_eq!(enforce("Bob").as_deref(), Some("Bob"));
        assert_eq!(enforce("   "), None);
    }
}
