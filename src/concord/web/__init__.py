"""The page shell: layout, navigation, sign-in, language, and the shared render helper."""
