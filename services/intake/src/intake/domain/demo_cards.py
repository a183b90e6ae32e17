"""The published test card number the API documentation uses in its examples (a well-known
scheme test number, never a real card). Kept here, in one place, so that no other source file
carries a card-shaped number."""

EXAMPLE_CARD_NUMBER = "4111111111111111"
