"""wsframe.sansio."""
