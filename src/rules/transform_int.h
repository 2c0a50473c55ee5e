/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by transform.c (parsing a chain at load, type checks, the rule's
 * device time) and transform_run.c (running a chain on a value): the
 * steps, their definitions and the storage-class masks. Only those two
 * files include this.
 */
#ifndef GW_RULES_TRANSFORM_INT_H
#define GW_RULES_TRANSFORM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/rules_int.h"

enum xf_op {
	XF_MUL, XF_ADD, XF_ROUND, XF_INT, XF_FLOAT, XF_STR, XF_LOWER,
	XF_UPPER, XF_HEX, XF_UNHEX, XF_BASE64, XF_UNBASE64, XF_JSON,
	XF_DEFAULT, XF_TIME, XF_BIN,
};

/* Storage classes a value may have (load-time masks). */
#define XFM_INT	0x01
#define XFM_REAL	0x02
#define XFM_TEXT	0x04
#define XFM_BLOB	0x08
#define XFM_RAW	0x10		/* {payload_raw}: bytes, TEXT or BLOB */
#define XFM_NUM	(XFM_INT | XFM_REAL)
#define XFM_ALL	(XFM_NUM | XFM_TEXT | XFM_BLOB | XFM_RAW)

/* Argument kinds. */
enum xf_arg {
	A_NONE,			/* no argument */
	A_NUM,			/* a required number */
	A_DIGITS,		/* optional 0..15, default 0 */
	A_OFF,			/* optional byte offset, default 0 */
	A_VALUE,		/* a required constant */
	A_FMT,			/* optional time format */
	A_PATH,			/* optional JSON path */
};

struct xf_def {
	const char	*name;
	uint8_t		 op;		/* enum xf_op */
	uint8_t		 arg;		/* enum xf_arg */
	uint8_t		 accept;	/* M_* taken */
	uint8_t		 width;		/* XF_BIN: bytes */
	char		 kind;		/* XF_BIN: 'u', 'i' or 'f' */
	bool		 be;		/* XF_BIN: big-endian */
};


struct transform_step {
	const struct xf_def	*def;	/* what the step is */
	int64_t			 n;	/* integer argument */
	double			 d;	/* XF_MUL/XF_ADD argument */
	bool			 isint;	/* the argument is an integer */
	uint8_t			 out;	/* M_* this step may give */
	struct rule_value	 val;	/* XF_DEFAULT (TEXT owned) */
	char			*fmt;	/* XF_TIME format or NULL */
	struct rule_ph		 path;	/* XF_JSON path steps */
};

/* transform.c */
int	transform_number_text(const char *s, size_t len,
	    struct rule_value *v);
uint8_t	transform_value_mask(const struct rule_value *v);

#endif
