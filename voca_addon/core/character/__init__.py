"""Character stage: fit FLAME to any head mesh, transfer VOCA's motion, drive the rig's own keys.

landmarks (iBUG ids on FLAME, pairs files) → align (Umeyama similarity) → nicp (Amberg 2007) → fit
(island roles, residuals) → transfer (sparse FLAME→target map, a ShapeKeyAnimation on the target) →
keysolve (bounded smooth weights for the rig's keys) → arkit (names, Live Link Face CSV, JSON).
surface holds the exact closest-point queries they share. numpy + scipy only.
"""
