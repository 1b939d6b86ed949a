"""Back-office systems of agencies pushing case changes to the hub as CloudEvents."""
