"""Reporting: call facts that last, the hotline's KPIs against their targets, and the report."""
