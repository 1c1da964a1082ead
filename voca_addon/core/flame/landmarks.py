"""FLAME's 68 iBUG landmark vertices and the named groups the stages use.

The 68 iBUG facial landmarks (Sagonas et al. 2013: 0–16 jaw line, 17–26 brows, 27–35 nose, 36–47
eyes, 48–59 outer lips, 60–67 inner lips) as FLAME vertex ids are facts taken from the SAiD project's
``data/FLAME_landmarks.txt`` (yunik1004/SAiD, Apache-2.0; Park et al. 2024). Named landmark groups
(jaw, inner lips) index this list.

Contract: numpy only; constants.
"""
import numpy as np

FLAME_NUM_VERTICES = 5023
FLAME_IBUG68 = np.array([  # iBUG landmark k → FLAME vertex id (SAiD, Apache-2.0)
    2210, 1963, 3056, 3424, 3423, 3421, 3419, 3416, 3414, 3635, 3643, 3646, 3650, 3652, 2004, 568, 728,
    2567, 337, 338, 3154, 3712, 3868, 2135, 27, 18, 1430,
    3560, 3561, 3501, 3564, 2751, 2793, 3556, 1676, 1623,
    2428, 2453, 2494, 3631, 2278, 2359, 3832, 1343, 1218, 1154, 995, 829,
    2820, 2864, 2774, 3543, 1657, 1749, 1703, 1774, 1802, 3503, 2905, 2881,
    2845, 2787, 3531, 1670, 1730, 1804, 3504, 2907], dtype=np.int64)
FLAME_EYEBALLS = (range(3931, 4477), range(4477, 5023))  # FLAME's two eyeball islands (vertex ids)
IBUG_CHIN = slice(6, 11)            # jaw line around the chin
IBUG_NOSE_BRIDGE = slice(27, 31)
IBUG_INNER_LIPS = slice(60, 68)
IBUG_INNER_LIP_UPPER, IBUG_INNER_LIP_LOWER = 62, 66
