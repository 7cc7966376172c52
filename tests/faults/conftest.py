"""The fault battery: real `creditflow serve` processes, killed (SIGKILL) at named fault points
(`creditflow.kit.faults`), restarted on the same database, then checked: every attempt
settled, each invoice charged at most once and granted only when paid, the ledger balanced."""
