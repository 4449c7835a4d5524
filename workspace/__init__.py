"""The operators' workspace: the contact registry every request is numbered in, repeat contacts,
and (to come) the desktop, tickets and the feedback form. See ARCHITECTURE.md."""
