"""Local stand-ins for DEP's two services (Cognito login, announcements API), for tests only."""
