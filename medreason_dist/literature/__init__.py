"""Literature mining for systematic reviews (LEADS): candidate records, clients, tasks."""
