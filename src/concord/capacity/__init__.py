"""Capacity building: programmes and their sessions, enrolment with a waiting list, signed
completion records, commitments, and an exchange that matches needs with offers."""
