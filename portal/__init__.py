"""The holder portal: rights holders' users sign in and see their own statements, earnings,
the generations behind each line and their evidence, and dispute lines (docs/portal.md)."""
