/* Tests of the experiment spec parser and serializer (server/spec.h): every error path with its
 * exact JSON Pointer (table-driven), defaults, the canonical round trip, limits enforced before
 * allocation (a counting allocator sees no large request), allocation failures, and the
 * standalone dataset / architecture parsers.
 *
 * Bodies are written with single quotes for readability and turned into JSON by q(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "failing_alloc.h"
#include "limits.h"
#include "spec.h"

/* ---- helpers ---- */

static char *q(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static int parse_q(const char *body, const struct limits *lim, struct spec_experiment **out,
                   struct spec_errors *errs)
{
    char *text = q(body);
    int rc = spec_experiment_parse_text(text, strlen(text), lim, out, errs);
    free(text);
    return rc;
}

static struct spec_experiment *parse_ok(const char *body)
{
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    int rc = parse_q(body, NULL, &exp, &errs);
    if (rc != BASIN_OK) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "unexpected error %s: %s\n", errs.items[i].pointer,
                    errs.items[i].message);
    }
    assert_int_equal(rc, BASIN_OK);
    assert_int_equal(errs.count, 0);
    assert_non_null(exp);
    spec_errors_clear(&errs);
    return exp;
}

static char *canonical_text(const struct spec_experiment *exp)
{
    json_t *j = spec_experiment_to_json(exp);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(s);
    json_decref(j);
    return s;
}

#define DS4 "'dataset':{'kind':'inline','x':[[0,0],[0,1],[1,0],[1,1]],'y':[0,1,1,0]}"
#define LAYERS                                                                                     \
    "[{'type':'dense','units':4},{'type':'activation','kind':'relu'},{'type':'dense','units':1}]"
#define AR "'architecture':{'input_shape':[2],'layers':" LAYERS "}"
#define B(extra) "{" DS4 "," AR extra "}"
#define WITH_DS(ds) "{'dataset':" ds "," AR "}"
#define WITH_AR(ar) "{" DS4 ",'architecture':" ar "}"
#define WITH_LAYERS(l) "{" DS4 ",'architecture':{'input_shape':[2],'layers':" l "}}"
#define IMG_DS                                                                                     \
    "'dataset':{'kind':'inline','input_shape':[1,2,2],'x':[[0,0,0,1],[1,0,0,0]],'y':[0,1]}"
#define WITH_IMG_LAYERS(l) "{" IMG_DS ",'architecture':{'layers':" l "}}"
#define STUDENT                                                                                    \
    "'architecture':{'input_shape':[2],'layers':[{'type':'dense','units':3,'bias':false},"         \
    "{'type':'activation','kind':'relu'},{'type':'sum'}]}"
#define TG "'dataset':{'kind':'teacher_gaussian','k':2,'d':2}"

/* ---- the table of bad bodies ---- */

struct bad_case {
    const char *body;
    const char *pointer; /* of the one error expected */
    const char *message; /* a substring of its message */
};

static const struct bad_case bad_cases[] = {
    /* the body */
    {"[]", "", "must be a JSON object"},
    {B(",'bogus':1"), "/bogus", "unknown field"},
    {B(",'a/b~c':1"), "/a~1b~0c", "unknown field"},
    {"{" AR "}", "/dataset", "required"},
    {"{" DS4 "}", "/architecture", "required"},
    {B(",'dataset_id':'d1'"), "/dataset_id", "not both"},
    {B(",'architecture_id':'a1'"), "/architecture_id", "not both"},
    {"{'dataset_id':''," AR "}", "/dataset_id", "non-empty string"},
    {"{'dataset':[1]," AR "}", "/dataset", "must be an object"},
    {"{" DS4 ",'architecture':7}", "/architecture", "must be an object"},
    /* inline datasets */
    {WITH_DS("{'x':[[0,0]],'y':[0]}"), "/dataset/kind", "required"},
    {WITH_DS("{'kind':'parquet'}"), "/dataset/kind", "must be one of"},
    {WITH_DS("{'kind':'inline','x':[[0,0]],'y':[0],'z':1}"), "/dataset/z",
     "unknown field for a inline dataset"},
    {WITH_DS("{'kind':'inline','y':[0]}"), "/dataset/x", "required"},
    {WITH_DS("{'kind':'inline','x':[],'y':[0]}"), "/dataset/x", "non-empty"},
    {WITH_DS("{'kind':'inline','x':[[]],'y':[0]}"), "/dataset/x/0", "non-empty"},
    {WITH_DS("{'kind':'inline','x':[[0,0],[1]],'y':[0,1]}"), "/dataset/x/1",
     "must be an array of 2 numbers"},
    {WITH_DS("{'kind':'inline','x':[[0,0],[0,'a']],'y':[0,1]}"), "/dataset/x/1/1",
     "must be a finite number"},
    {WITH_DS("{'kind':'inline','x':[[0,0],[0,1]]}"), "/dataset/y", "required"},
    {WITH_DS("{'kind':'inline','x':[[0,0],[0,1]],'y':[0,1,1]}"), "/dataset/y",
     "must be an array of 2 targets"},
    {WITH_DS("{'kind':'inline','x':[[0,0],[0,1],[1,1]],'y':[0,1,'1']}"), "/dataset/y/2",
     "must be a finite number"},
    {WITH_DS("{'kind':'inline','x':[[0,0],[0,1],[1,1]],'y':[[0],[1],1]}"), "/dataset/y/2",
     "must be an array of 1 numbers"},
    {WITH_DS("{'kind':'inline','x':[[0,0]],'y':[0],'input_shape':[3]}"), "/dataset/input_shape",
     "describes 3 values"},
    {WITH_DS("{'kind':'inline','x':[[0,0]],'y':[0],'input_shape':[2,1]}"), "/dataset/input_shape",
     "must be [d] or [c, h, w]"},
    {WITH_DS("{'kind':'inline','x':[[0,0]],'y':[0],'input_shape':[0]}"), "/dataset/input_shape/0",
     "positive integer"},
    {WITH_DS("{'kind':'inline','x':[[0,0]],'y':[0],'name':5}"), "/dataset/name",
     "must be a string"},
    /* a broken dataset does not also make the architecture's missing input_shape an error */
    {"{'dataset':{'kind':'inline','x':[[0,'a']],'y':[0]},'architecture':{'layers':" LAYERS "}}",
     "/dataset/x/0/1", "finite number"},

    /* generators */
    {WITH_DS("{'kind':'generator'}"), "/dataset/generator", "required"},
    {WITH_DS("{'kind':'generator','generator':[]}"), "/dataset/generator", "must be an object"},
    {WITH_DS("{'kind':'generator','generator':{'name':'mnist','n':4}}"), "/dataset/generator/name",
     "must be one of"},
    {WITH_DS("{'kind':'generator','generator':{'name':'xor'}}"), "/dataset/generator/n",
     "required"},
    {WITH_DS("{'kind':'generator','generator':{'name':'xor','n':0}}"), "/dataset/generator/n",
     "must be a positive integer ≤ 100000"},
    {WITH_DS("{'kind':'generator','generator':{'name':'xor','n':2.5}}"), "/dataset/generator/n",
     "positive integer"},
    {WITH_DS("{'kind':'generator','generator':{'name':'xor','n':1e9}}"), "/dataset/generator/n",
     "≤ 100000"},
    {WITH_DS("{'kind':'generator','generator':{'name':'xor','n':8,'noise':-1}}"),
     "/dataset/generator/noise", "≥ 0"},
    {WITH_DS("{'kind':'generator','generator':{'name':'xor','n':8,'seed':-3}}"),
     "/dataset/generator/seed", "non-negative integer"},
    {WITH_DS("{'kind':'generator','generator':{'name':'xor','n':8,'classes':3}}"),
     "/dataset/generator/classes", "unknown field for generator xor"},
    {WITH_DS("{'kind':'generator','generator':{'name':'spirals','n':8,'classes':1}}"),
     "/dataset/generator/classes", "[2, 1000]"},
    {WITH_DS("{'kind':'generator','generator':{'name':'bars_stripes','n':8,'image_size':200}}"),
     "/dataset/generator/image_size", "the limit is 16384"},
    {WITH_DS("{'kind':'generator','generator':{'name':'gaussian_blobs','n':8,'dim':0}}"),
     "/dataset/generator/dim", "positive integer"},
    {WITH_DS("{'kind':'generator','generator':{'name':'teacher','n':8}}"),
     "/dataset/generator/teacher", "required"},
    {WITH_DS("{'kind':'generator','generator':{'name':'teacher','n':8,'teacher':{'layers':[{"
             "'type':'dense','units':0}]}}}"),
     "/dataset/generator/teacher/layers/0/units", "positive integer"},
    {WITH_DS("{'kind':'generator','generator':{'name':'teacher','n':8,'teacher':{'input_shape':["
             "3],'layers':[{'type':'dense','units':1}]}}}"),
     "/dataset/generator/teacher/input_shape", "must be [2]"},
    /* csv */
    {WITH_DS("{'kind':'csv'}"), "/dataset/csv", "required"},
    {WITH_DS("{'kind':'csv','csv':5}"), "/dataset/csv", "must be a string"},
    {WITH_DS("{'kind':'csv','csv':'1,2,0\\n4,5\\n'}"), "/dataset/csv", "line 2"},
    {WITH_DS("{'kind':'csv','csv':'1,2,0\\n1,x,1\\n'}"), "/dataset/csv", "line 2, column 2"},
    {WITH_DS("{'kind':'csv','csv':'1,2,0\\n','y_cols':0}"), "/dataset/y_cols", "positive integer"},
    {WITH_DS("{'kind':'csv','csv':'1,2,0\\n','header':'yes'}"), "/dataset/header", "true or false"},
    {WITH_DS("{'kind':'csv','csv':'1,2,0\\n','delimiter':';;'}"), "/dataset/delimiter",
     "single character"},
    {WITH_DS("{'kind':'csv','csv':'1,2,0\\n','input_shape':[3]}"), "/dataset/input_shape",
     "does not match the 2 input columns"},
    /* teacher_gaussian */
    {"{'dataset':{'kind':'teacher_gaussian','d':2}," STUDENT "}", "/dataset/k", "required"},
    {"{'dataset':{'kind':'teacher_gaussian','k':2,'d':2,'teacher':'foo'}," STUDENT "}",
     "/dataset/teacher", "must be one of"},
    {"{'dataset':{'kind':'teacher_gaussian','k':3,'d':2}," STUDENT "}", "/dataset/teacher",
     "needs k ≤ d"},
    {"{'dataset':{'kind':'teacher_gaussian','k':2,'d':2,'teacher':[[1,0]]}," STUDENT "}",
     "/dataset/teacher", "must have k = 2 rows"},
    {"{'dataset':{'kind':'teacher_gaussian','k':1,'d':2,'teacher':[[1,'x']]}," STUDENT "}",
     "/dataset/teacher/0/1", "finite number"},
    {"{" TG "," STUDENT ",'loss':'absolute'}", "/loss", "squared population risk"},
    {"{" TG ",'architecture':{'input_shape':[2],'layers':[{'type':'dense','units':3},{'type':"
     "'activation','kind':'relu'},{'type':'sum'}]}}",
     "/architecture/layers/0/bias", "must be false"},
    {"{" TG "," STUDENT ",'optimizer':{'kind':'sgd','batch':4}}", "/optimizer/batch", "no samples"},
    /* architectures */
    {WITH_AR("{'input_shape':[2]}"), "/architecture/layers", "required"},
    {WITH_AR("{'input_shape':[2],'layers':[]}"), "/architecture/layers", "non-empty"},
    {WITH_AR("{'input_shape':[2],'layers':" LAYERS ",'depth':3}"), "/architecture/depth",
     "unknown field"},
    {"{'dataset_id':'d1','architecture':{'layers':" LAYERS "}}", "/architecture/input_shape",
     "required"},
    {WITH_AR("{'input_shape':[3],'layers':" LAYERS "}"), "/architecture/input_shape",
     "is [3] but the dataset's input_shape is [2]"},
    {WITH_LAYERS("[5]"), "/architecture/layers/0", "must be an object"},
    {WITH_LAYERS("[{'units':4}]"), "/architecture/layers/0/type", "required"},
    {WITH_LAYERS("[{'type':'dense','units':4},{'type':'lstm'}]"), "/architecture/layers/1/type",
     "must be one of"},
    {WITH_LAYERS("[{'type':'dense','units':1000000000}]"), "/architecture/layers/0/units",
     "must be a positive integer ≤ 65536"},
    {WITH_LAYERS("[{'type':'dense','units':-1}]"), "/architecture/layers/0/units",
     "positive integer"},
    {WITH_LAYERS("[{'type':'dense','units':'4'}]"), "/architecture/layers/0/units",
     "positive integer"},
    {WITH_LAYERS("[{'type':'dense'}]"), "/architecture/layers/0/units", "required"},
    {WITH_LAYERS("[{'type':'dense','units':1,'activation':'relu'}]"),
     "/architecture/layers/0/activation", "unknown field for a dense layer"},
    {WITH_LAYERS("[{'type':'dense','units':1,'bias':1}]"), "/architecture/layers/0/bias",
     "true or false"},
    {WITH_LAYERS("[{'type':'dense','units':4},{'type':'activation','kind':'tanh'},{'type':"
                 "'dense','units':1}]"),
     "/architecture/layers/1/kind", "must be one of"},
    {WITH_LAYERS("[{'type':'dense','units':4},{'type':'activation'},{'type':'dense','units':1}]"),
     "/architecture/layers/1/kind", "required"},
    {WITH_LAYERS("[{'type':'dense','units':4},{'type':'activation','kind':'leaky_relu','slope':'"
                 "x'},{'type':'dense','units':1}]"),
     "/architecture/layers/1/slope", "finite number"},
    {WITH_LAYERS("[{'type':'dense','units':4},{'type':'activation','kind':'pwl','s_neg':0.1},{"
                 "'type':'dense','units':1}]"),
     "/architecture/layers/1/s_pos", "required"},
    {WITH_LAYERS("[{'type':'dense','units':4},{'type':'activation','kind':'relu','slope':0.1},{"
                 "'type':'dense','units':1}]"),
     "/architecture/layers/1/slope", "unknown field for activation relu"},
    {WITH_LAYERS("[{'type':'flatten','units':3},{'type':'dense','units':1}]"),
     "/architecture/layers/0/units", "unknown field for a flatten layer"},
    {WITH_IMG_LAYERS("[{'type':'conv2d','filters':1,'kernel':1,'padding':'full'},{'type':"
                     "'flatten'},{'type':'dense','units':1}]"),
     "/architecture/layers/0/padding", "\"valid\", \"same\""},
    {WITH_IMG_LAYERS("[{'type':'conv2d','filters':1,'kernel':0},{'type':'flatten'},{'type':"
                     "'dense','units':1}]"),
     "/architecture/layers/0/kernel", "positive integer"},
    {WITH_IMG_LAYERS("[{'type':'conv2d','kernel':1},{'type':'flatten'},{'type':'dense','units':"
                     "1}]"),
     "/architecture/layers/0/filters", "required"},
    {WITH_IMG_LAYERS("[{'type':'maxpool'},{'type':'flatten'},{'type':'dense','units':1}]"),
     "/architecture/layers/0/size", "required"},
    /* errors found by basin_net_create */
    {WITH_IMG_LAYERS("[{'type':'dense','units':1}]"), "/architecture/layers/0/type",
     "add a flatten layer"},
    {WITH_IMG_LAYERS("[{'type':'conv2d','filters':1,'kernel':3},{'type':'flatten'},{'type':"
                     "'dense','units':1}]"),
     "/architecture/layers/0/kernel", "larger than the padded input"},
    {WITH_IMG_LAYERS("[{'type':'maxpool','size':3},{'type':'flatten'},{'type':'dense','units':"
                     "1}]"),
     "/architecture/layers/0/size", "larger than the input"},
    {WITH_IMG_LAYERS("[{'type':'conv2d','filters':1,'kernel':1}]"), "/architecture/layers",
     "must be a vector"},
    {WITH_LAYERS("[{'type':'conv2d','filters':1,'kernel':1},{'type':'flatten'}]"),
     "/architecture/layers/0/type", "needs a [c,h,w] input"},
    {WITH_IMG_LAYERS("[{'type':'conv2d','filters':1,'kernel':1,'stride':2,'padding':'same'},{"
                     "'type':'flatten'},{'type':'dense','units':1}]"),
     "/architecture/layers/0/padding", ""},
    {WITH_LAYERS("[{'type':'dense','units':65536},{'type':'dense','units':65536},{'type':'dense',"
                 "'units':1}]"),
     "/architecture", "parameters; the limit is 10000000"},
    /* loss */
    {B(",'loss':'l1'"), "/loss", "must be one of"},
    {B(",'loss':5"), "/loss", "loss name or an object"},
    {B(",'loss':{'kind':'huber','delta':0}"), "/loss/delta", "> 0"},
    {B(",'loss':{'kind':'squared','delta':1}"), "/loss/delta", "unknown field"},
    {B(",'loss':{'delta':1}"), "/loss/kind", "required"},
    {B(",'loss':'cross_entropy'"), "/loss", "needs ≥ 2 outputs"},
    {"{'dataset':{'kind':'inline','x':[[0,0],[0,1],[1,0],[1,1]],'y':[0,0.5,1,0]}," AR
     ",'loss':'logistic'}",
     "/dataset/y/1", "must be 0 or 1 for loss logistic"},
    {"{" DS4 ",'architecture':{'input_shape':[2],'layers':[{'type':'dense','units':2}]},'loss':"
     "'hinge'}",
     "/loss", "hinge needs an architecture with 1 output; it has 2"},
    {"{'dataset':{'kind':'inline','x':[[0,0],[0,1],[1,0],[1,1]],'y':[0,1,2,0]},'architecture':{"
     "'input_shape':[2],'layers':[{'type':'dense','units':2}]},'loss':'cross_entropy'}",
     "/dataset/y/2", "class index in [0, 2)"},
    {"{'dataset':{'kind':'inline','x':[[0,0],[0,1]],'y':[[0,1],[1,0]]}," AR "}", "/dataset/y",
     "targets have 2 values per sample; loss squared on 1 outputs needs 1"},
    {"{'dataset':{'kind':'csv','csv':'0,0,0\\n0,1,3\\n1,0,1\\n'}," AR ",'loss':'logistic'}",
     "/dataset/csv", "sample 2: target must be 0 or 1"},
    {"{'dataset':{'kind':'csv','csv':'0,0,0,1\\n1,1,1,0\\n','y_cols':2}," AR "}", "/dataset/y_cols",
     "targets have 2 values"},
    {"{'dataset':{'kind':'generator','generator':{'name':'sine','n':1}},'architecture':{'layers':"
     "[{'type':'dense','units':1}]},'loss':'hinge'}",
     "/dataset/generator", "sample 1: target must be 0 or 1"},
    /* l2, optimizer */
    {B(",'l2':-1"), "/l2", "≥ 0"},
    {B(",'l2':'0'"), "/l2", "≥ 0"},
    {B(",'optimizer':[]"), "/optimizer", "must be an object"},
    {B(",'optimizer':{'kind':'rmsprop'}"), "/optimizer/kind", "must be one of"},
    {B(",'optimizer':{'kind':'gd','lr':0}"), "/optimizer/lr", "> 0"},
    {B(",'optimizer':{'kind':'gd','lr':0.1,'batch':2}"), "/optimizer/batch", "gd is full-batch"},
    {B(",'optimizer':{'kind':'sgd','lr':0.1}"), "/optimizer/batch", "required"},
    {B(",'optimizer':{'kind':'sgd','batch':5}"), "/optimizer/batch", "≤ the number of samples (4)"},
    {B(",'optimizer':{'kind':'momentum','momentum':1}"), "/optimizer/momentum", "[0, 1)"},
    {B(",'optimizer':{'kind':'adam','momentum':0.5}"), "/optimizer/momentum",
     "unknown field for optimizer adam"},
    {B(",'optimizer':{'kind':'adam','eps':0}"), "/optimizer/eps", "> 0"},
    {B(",'optimizer':{'kind':'adam','beta2':1.5}"), "/optimizer/beta2", "[0, 1)"},
    {B(",'optimizer':{'schedule':{'kind':'cosine'}}"), "/optimizer/schedule/kind",
     "must be one of"},
    {B(",'optimizer':{'schedule':{'kind':'step'}}"), "/optimizer/schedule/step_every", "required"},
    {B(",'optimizer':{'schedule':{'kind':'step','step_every':10,'gamma':-1}}"),
     "/optimizer/schedule/gamma", "> 0"},
    {B(",'optimizer':{'schedule':{'kind':'constant','gamma':0.5}}"), "/optimizer/schedule/gamma",
     "unknown field for schedule constant"},
    {B(",'optimizer':{'schedule':{'kind':'step','step_every':20000}}"),
     "/optimizer/schedule/step_every", "≤ 10000"},
    /* init */
    {B(",'init':{'kind':'orthogonal'}"), "/init/kind", "must be one of"},
    {B(",'init':{'kind':'normal','std':0}"), "/init/std", "> 0"},
    {B(",'init':{'kind':'normal','a':1}"), "/init/a", "unknown field for init normal"},
    {B(",'init':{'kind':'given'}"), "/init/params", "required"},
    {B(",'init':{'kind':'given','params':[1,2,3]}"), "/init/params",
     "must have 17 values (the architecture's param_count); got 3"},
    {B(",'init':{'kind':'given','params':[1,'x',3]}"), "/init/params/1", "finite number"},
    {B(",'init':{'kind':'he','bias':'0'}"), "/init/bias", "finite number"},
    {B(",'init':3"), "/init", "must be an object"},
    /* the rest */
    {B(",'restarts':0"), "/restarts", "positive integer ≤ 10000"},
    {B(",'restarts':1000000"), "/restarts", "≤ 10000"},
    {B(",'restarts':2.5"), "/restarts", "positive integer"},
    {B(",'seed':-1"), "/seed", "non-negative integer"},
    {B(",'seed':'abc'"), "/seed", "non-negative integer"},
    {B(",'max_steps':0"), "/max_steps", "positive integer"},
    {B(",'max_steps':true"), "/max_steps", "positive integer"},
    {B(",'stop':{'grad_tol':-1}"), "/stop/grad_tol", "≥ 0"},
    {B(",'stop':{'risk_tol':'x'}"), "/stop/risk_tol", "≥ 0"},
    {B(",'stop':{'plateau':{'tol':0.1}}"), "/stop/plateau/window", "required"},
    {B(",'stop':{'plateau':5}"), "/stop/plateau", "or null"},
    {B(",'stop':{'diverge_factor':0.5}"), "/stop/diverge_factor", "≥ 1"},
    {B(",'stop':{'patience':3}"), "/stop/patience", "unknown field"},
    {B(",'stop':[]"), "/stop", "must be an object"},
    {B(",'trajectory_every':-1"), "/trajectory_every", "non-negative integer"},
    {B(",'max_steps':100000,'trajectory_every':1"), "/trajectory_every",
     "gives up to 100002 points per run; the limit is 10000"},
    {B(",'max_batch':0"), "/max_batch", "positive integer"},
    {B(",'certify':3"), "/certify", "must be an object"},
};

static void test_bad_bodies(void **state)
{
    (void)state;
    size_t n = sizeof bad_cases / sizeof bad_cases[0], checked = 0;
    for (size_t i = 0; i < n; i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct spec_errors errs;
        struct spec_experiment *exp = NULL;
        spec_errors_init(&errs);
        int rc = parse_q(bc->body, NULL, &exp, &errs);
        int good = rc == BASIN_EINVAL && exp == NULL && errs.count == 1 &&
                   strcmp(errs.items[0].pointer, bc->pointer) == 0 &&
                   strstr(errs.items[0].message, bc->message) != NULL;
        if (!good) {
            fprintf(stderr, "case %zu: %s\n  want %s: ...%s...\n  got rc %d, %zu errors\n", i,
                    bc->body, bc->pointer, bc->message, rc, errs.count);
            for (size_t e = 0; e < errs.count; e++)
                fprintf(stderr, "    %s: %s\n", errs.items[e].pointer, errs.items[e].message);
        }
        assert_true(good);
        spec_errors_clear(&errs);
        checked++;
    }
    assert_true(checked >= 60);
}

static void test_all_errors_collected(void **state)
{
    (void)state;
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    int rc = parse_q("{'dataset':{'kind':'inline','x':[[0,0],[0,'a']],'y':[0,'b']},"
                     "'architecture':{'input_shape':[2],'layers':[{'type':'dense','units':0}]},"
                     "'restarts':0,'l2':-1,'optimizer':{'kind':'gd','lr':-1},'zzz':1}",
                     NULL, &exp, &errs);
    assert_int_equal(rc, BASIN_EINVAL);
    assert_null(exp);
    /* unknown fields first, then the sections in body order of the parser */
    static const char *const want[] = {
        "/zzz", "/dataset/x/1/1", "/dataset/y/1", "/architecture/layers/0/units",
        "/l2",  "/optimizer/lr",  "/restarts"};
    assert_int_equal(errs.count, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < errs.count; i++)
        assert_string_equal(errs.items[i].pointer, want[i]);
    json_t *j = spec_errors_to_json(&errs);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), errs.count);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 4), "pointer")), "/l2");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 4), "message")),
                        "must be a number ≥ 0");
    json_decref(j);
    spec_errors_clear(&errs);

    /* the layers are still checked when the dataset (and so the default input_shape) failed */
    rc = parse_q("{'dataset':{'kind':'inline','x':[[0,1]],'y':[]},'architecture':{'layers':[{"
                 "'type':'dense','units':0}]}}",
                 NULL, &exp, &errs);
    assert_int_equal(rc, BASIN_EINVAL);
    assert_int_equal(errs.count, 2);
    assert_string_equal(errs.items[0].pointer, "/dataset/y");
    assert_string_equal(errs.items[1].pointer, "/architecture/layers/0/units");
    spec_errors_clear(&errs);
}

/* 150 bad cells: the list stops at SPEC_MAX_ERRORS and says how many more there were. */
static void test_error_cap(void **state)
{
    (void)state;
    size_t rows = 150;
    size_t cap = 256 + rows * 16;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t len = (size_t)snprintf(body, cap, "{\"dataset\":{\"kind\":\"inline\",\"x\":[");
    for (size_t i = 0; i < rows; i++)
        len += (size_t)snprintf(body + len, cap - len, "%s[0,\"a\"]", i ? "," : "");
    len += (size_t)snprintf(body + len, cap - len, "],\"y\":[");
    for (size_t i = 0; i < rows; i++)
        len += (size_t)snprintf(body + len, cap - len, "%s0", i ? "," : "");
    len += (size_t)snprintf(body + len, cap - len,
                            "]},\"architecture\":{\"input_shape\":[2],\"layers\":[{\"type\":"
                            "\"dense\",\"units\":1}]}}");
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    assert_int_equal(spec_experiment_parse_text(body, len, NULL, &exp, &errs), BASIN_EINVAL);
    assert_int_equal(errs.count, SPEC_MAX_ERRORS);
    assert_int_equal(errs.dropped, rows - SPEC_MAX_ERRORS);
    assert_string_equal(errs.items[99].pointer, "/dataset/x/99/1");
    json_t *j = spec_errors_to_json(&errs);
    assert_int_equal(json_array_size(j), SPEC_MAX_ERRORS + 1);
    json_t *last = json_array_get(j, SPEC_MAX_ERRORS);
    assert_string_equal(json_string_value(json_object_get(last, "pointer")), "");
    assert_string_equal(json_string_value(json_object_get(last, "message")),
                        "50 more errors not shown");
    json_decref(j);
    spec_errors_clear(&errs);
    free(body);
}

static void test_malformed_json(void **state)
{
    (void)state;
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    const char *text = "{\n  \"restarts\": 3,\n  \"seed\": }";
    assert_int_equal(spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs),
                     BASIN_EINVAL);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.items[0].pointer, "");
    assert_non_null(strstr(errs.items[0].message, "malformed JSON at line 3"));
    spec_errors_clear(&errs);

    text = "{\"seed\": 1, \"seed\": 2}";
    assert_int_equal(spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs),
                     BASIN_EINVAL);
    assert_int_equal(errs.count, 1);
    assert_non_null(strstr(errs.items[0].message, "duplicate"));
    spec_errors_clear(&errs);

    /* jansson's error text quotes half of the "é" after a bad escape: the message is still
     * UTF-8 (U+FFFD in place of the cut byte), so the 422 answer can be built */
    text = "{\"a\": \"\\\xC3\xA9\"}";
    assert_int_equal(spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs),
                     BASIN_EINVAL);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.items[0].pointer, "");
    assert_non_null(strstr(errs.items[0].message, "malformed JSON"));
    json_t *msg = json_string(errs.items[0].message); /* NULL for ill-formed UTF-8 */
    assert_non_null(msg);
    json_decref(msg);
    json_t *arr = spec_errors_to_json(&errs);
    assert_non_null(arr);
    json_decref(arr);
    spec_errors_clear(&errs);

    /* NaN is not JSON: rejected by the JSON parser before the spec parser sees it */
    text = "{\"l2\": NaN}";
    assert_int_equal(spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs),
                     BASIN_EINVAL);
    assert_non_null(strstr(errs.items[0].message, "malformed JSON"));
    spec_errors_clear(&errs);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    struct spec_experiment *exp =
        parse_ok("{" DS4 ",'architecture':{'layers':[{'type':'dense','units':4},{'type':"
                 "'activation','kind':'leaky_relu'},{'type':'dense','units':1}]}}");
    assert_int_equal(exp->loss.kind, BASIN_LOSS_SQUARED);
    assert_true(exp->l2 == 0.0);
    const basin_train_spec *t = &exp->train;
    assert_int_equal(t->optim.kind, BASIN_OPT_GD);
    assert_true(t->optim.lr == 0.01);
    assert_int_equal(t->optim.batch, 0);
    assert_int_equal(t->optim.schedule, BASIN_SCHEDULE_CONSTANT);
    assert_int_equal(t->init.kind, BASIN_INIT_HE_NORMAL);
    assert_true(t->init.bias == 0.0);
    assert_int_equal(exp->restarts, 1);
    assert_int_equal(t->seed, 0);
    assert_int_equal(t->max_steps, 10000);
    assert_true(t->grad_tol == 1e-8);
    assert_true(t->risk_tol < 0);
    assert_int_equal(t->plateau_window, 0);
    assert_true(t->diverge_factor == 1e6);
    assert_int_equal(t->trajectory_every, 100);
    assert_int_equal(exp->max_batch, 0);
    assert_null(exp->certify);
    /* architecture input_shape from the dataset; bias defaults to true; leaky slope 0.01 */
    assert_int_equal(exp->arch->arch.in_rank, 1);
    assert_int_equal(exp->arch->arch.in_shape[0], 2);
    assert_true(exp->arch->input_shape_defaulted);
    assert_int_equal(exp->arch->layers[0].bias, 1);
    assert_true(exp->arch->layers[1].slope == 0.01);
    assert_int_equal(basin_net_param_count(exp->arch->net), 17);
    /* the dataset: 4 points, binary labels */
    assert_int_equal(exp->dataset->data->n, 4);
    assert_int_equal(exp->dataset->data->task, BASIN_TASK_BINARY);
    assert_true(exp->dataset->data->x[4] == 1.0 && exp->dataset->data->x[5] == 0.0); /* (1,0) */

    /* the canonical JSON shows the defaults */
    json_t *j = spec_experiment_to_json(exp);
    assert_string_equal(json_string_value(json_object_get(j, "loss")), "squared");
    json_t *opt = json_object_get(j, "optimizer");
    assert_string_equal(json_string_value(json_object_get(opt, "kind")), "gd");
    assert_true(json_real_value(json_object_get(opt, "lr")) == 0.01);
    assert_null(json_object_get(opt, "batch"));
    json_t *stop = json_object_get(j, "stop");
    assert_true(json_is_null(json_object_get(stop, "risk_tol")));
    assert_true(json_is_null(json_object_get(stop, "plateau")));
    assert_int_equal(json_integer_value(json_object_get(j, "restarts")), 1);
    assert_null(json_object_get(j, "max_batch"));
    json_t *shape = json_object_get(json_object_get(j, "architecture"), "input_shape");
    assert_int_equal(json_array_size(shape), 1);
    assert_int_equal(json_integer_value(json_array_get(shape, 0)), 2);
    json_decref(j);
    spec_experiment_free(exp);

    /* adam: lr 0.001 and torch's betas; momentum: 0.9 */
    exp = parse_ok(B(",'optimizer':{'kind':'adam'}"));
    assert_true(exp->train.optim.lr == 0.001);
    assert_true(exp->train.optim.beta1 == 0.9 && exp->train.optim.beta2 == 0.999);
    assert_true(exp->train.optim.eps == 1e-8);
    spec_experiment_free(exp);
    exp = parse_ok(B(",'optimizer':{'kind':'nesterov','lr':0.5}"));
    assert_int_equal(exp->train.optim.kind, BASIN_OPT_NESTEROV);
    assert_true(exp->train.optim.momentum == 0.9 && exp->train.optim.lr == 0.5);
    spec_experiment_free(exp);
    exp = parse_ok(B(",'optimizer':{'kind':'sgd','batch':2}"));
    assert_int_equal(exp->train.optim.kind, BASIN_OPT_GD);
    assert_int_equal(exp->train.optim.batch, 2);
    spec_experiment_free(exp);
    exp = parse_ok(B(",'init':{'kind':'normal'}"));
    assert_true(exp->train.init.std == 0.1);
    spec_experiment_free(exp);

    /* trajectory_every grows with max_steps so that a run keeps ≤ 10000 points:
     * floor(1e6/e) + 2 ≤ 10000 first holds at e = 101 (e = 100 gives 10002). */
    exp = parse_ok(B(",'max_steps':1000000"));
    assert_int_equal(exp->train.trajectory_every, 101);
    spec_experiment_free(exp);
    /* explicit values are kept, also 4.0 written as a real */
    exp = parse_ok(B(",'restarts':4.0,'seed':12345678901,'stop':{'risk_tol':0,'plateau':{'tol':"
                     "1e-9,'window':50},'diverge_factor':null}"));
    assert_int_equal(exp->restarts, 4);
    assert_int_equal(exp->train.seed, 12345678901ULL);
    assert_true(exp->train.risk_tol == 0.0);
    assert_int_equal(exp->train.plateau_window, 50);
    assert_true(exp->train.plateau_tol == 1e-9);
    assert_true(exp->train.diverge_factor == 0.0);
    spec_experiment_free(exp);
}

/* ---- canonical round trip ---- */

static const char *const round_trip_bodies[] = {
    B(""),
    "{'dataset':{'kind':'inline','name':'v','input_shape':[1,1,2],'x':[[0.5,-1],[2,3e-7]],'y':[["
    "1,2],[3,4.25]]},'architecture':{'name':'net','input_shape':[1,1,2],'layers':[{'type':"
    "'flatten'},{'type':'dense','units':3,'bias':false},{'type':'activation','kind':'pwl','s_neg':"
    "0.25,'s_pos':1.5},{'type':'dense','units':2}]},'loss':{'kind':'huber','delta':0.5},'l2':"
    "0.001,'optimizer':{'kind':'adam','lr':0.003,'beta1':0.8,'beta2':0.95,'eps':1e-7,'batch':1,"
    "'schedule':{'kind':'step','step_every':100,'gamma':0.5}},'init':{'kind':'uniform','a':0.3},"
    "'restarts':3,'seed':99,'max_steps':500,'stop':{'grad_tol':0,'risk_tol':1e-12,'plateau':{"
    "'tol':1e-6,'window':20},'diverge_factor':100},'trajectory_every':0,'max_batch':1,'certify':{"
    "'probes':8,'probe_radii':[0.1,0.01]}}",
    "{'dataset':{'kind':'generator','generator':{'name':'xor','n':40,'noise':0.1,'seed':3}},"
    "'architecture':{'layers':[{'type':'dense','units':3},{'type':'activation','kind':'leaky_"
    "relu','slope':-0.5},{'type':'dense','units':1}]},'loss':'logistic','optimizer':{'kind':"
    "'momentum','lr':0.05,'momentum':0.5,'batch':8}}",
    "{'dataset':{'kind':'generator','generator':{'name':'teacher','n':20,'dim':3,'teacher':{"
    "'layers':[{'type':'dense','units':2},{'type':'activation','kind':'relu'},{'type':'sum'}]}}},"
    "'architecture':{'layers':[{'type':'dense','units':4},{'type':'activation','kind':'identity'},"
    "{'type':'dense','units':1}]},'optimizer':{'kind':'sgd','batch':5}}",
    "{'dataset':{'kind':'generator','generator':{'name':'bars_stripes','n':16,'image_size':4}},"
    "'architecture':{'layers':[{'type':'conv2d','filters':2,'kernel':3,'padding':'same'},{'type':"
    "'activation','kind':'relu'},{'type':'maxpool','size':2},{'type':'conv2d','filters':1,"
    "'kernel':2,'stride':1,'padding':1,'bias':false},{'type':'avgpool','size':1},{'type':"
    "'flatten'},{'type':'dense','units':1}]},'loss':'hinge','init':{'kind':'xavier_uniform',"
    "'bias':0.1}}",
    "{'dataset':{'kind':'csv','csv':'a,b,y\\n0,0,0\\n0,1,1\\n1,0,1\\n1,1,0\\n'}," AR
    ",'loss':'absolute','init':{'kind':'given','params':[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
    "17]}}",
    "{'dataset':{'kind':'csv','csv':'0;0;0\\n0;1;1\\n','header':false,'delimiter':';'}," AR "}",
    "{'dataset':{'kind':'generator','generator':{'name':'spirals','n':30,'classes':3}},"
    "'architecture':{'layers':[{'type':'dense','units':8},{'type':'activation','kind':'relu'},{"
    "'type':'dense','units':3}]},'loss':'cross_entropy'}",
    "{'dataset':{'kind':'generator','generator':{'name':'gaussian_blobs','n':30,'dim':4}},"
    "'architecture':{'layers':[{'type':'dense','units':3}]},'loss':'cross_entropy'}",
    "{'dataset':{'kind':'teacher_gaussian','k':2,'d':3,'teacher':[[1,0,0],[0,0.5,0.5]],'seed':4},"
    "'architecture':{'input_shape':[3],'layers':[{'type':'dense','units':3,'bias':false},{'type':"
    "'activation','kind':'relu'},{'type':'sum'}]},'restarts':5}",
    "{'dataset':{'kind':'teacher_gaussian','k':2,'d':2,'teacher':'random_orthonormal'}," STUDENT
    "}",
    "{'dataset_id':'ds_1','architecture_id':'ar_2','optimizer':{'kind':'sgd','batch':10}}",
};

static void test_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof round_trip_bodies / sizeof round_trip_bodies[0]; i++) {
        struct spec_experiment *a = parse_ok(round_trip_bodies[i]);
        char *ta = canonical_text(a);
        struct spec_errors errs;
        struct spec_experiment *b = NULL;
        spec_errors_init(&errs);
        assert_int_equal(spec_experiment_parse_text(ta, strlen(ta), NULL, &b, &errs), BASIN_OK);
        char *tb = canonical_text(b);
        if (strcmp(ta, tb) != 0)
            fprintf(stderr, "case %zu:\n%s\n%s\n", i, ta, tb);
        assert_string_equal(ta, tb);
        /* the struct agrees too, not only its text */
        assert_int_equal(a->restarts, b->restarts);
        assert_true(a->train.optim.lr == b->train.optim.lr);
        assert_int_equal(a->train.optim.batch, b->train.optim.batch);
        assert_int_equal(a->train.trajectory_every, b->train.trajectory_every);
        if (a->dataset != NULL && a->dataset->data != NULL) {
            const basin_dataset *da = a->dataset->data, *db = b->dataset->data;
            assert_int_equal(da->n, db->n);
            assert_int_equal(da->in_dim, db->in_dim);
            assert_memory_equal(da->x, db->x, da->n * da->in_dim * sizeof(double));
            assert_memory_equal(da->y, db->y, da->n * da->y_dim * sizeof(double));
        }
        free(ta);
        free(tb);
        spec_experiment_free(a);
        spec_experiment_free(b);
        spec_errors_clear(&errs);
    }
}

/* Values that are not defaults survive in the canonical form. */
static void test_canonical_values(void **state)
{
    (void)state;
    struct spec_experiment *exp = parse_ok(round_trip_bodies[1]);
    json_t *j = spec_experiment_to_json(exp);
    json_t *opt = json_object_get(j, "optimizer");
    assert_string_equal(json_string_value(json_object_get(opt, "kind")), "adam");
    assert_true(json_real_value(json_object_get(opt, "beta2")) == 0.95);
    assert_int_equal(json_integer_value(json_object_get(opt, "batch")), 1);
    json_t *sched = json_object_get(opt, "schedule");
    assert_string_equal(json_string_value(json_object_get(sched, "kind")), "step");
    assert_int_equal(json_integer_value(json_object_get(sched, "step_every")), 100);
    json_t *loss = json_object_get(j, "loss");
    assert_true(json_real_value(json_object_get(loss, "delta")) == 0.5);
    json_t *ds = json_object_get(j, "dataset");
    assert_string_equal(json_string_value(json_object_get(ds, "name")), "v");
    assert_true(json_real_value(json_array_get(json_array_get(json_object_get(ds, "x"), 1), 1)) ==
                3e-7);
    json_t *y1 = json_array_get(json_object_get(ds, "y"), 1);
    assert_true(json_real_value(json_array_get(y1, 1)) == 4.25);
    json_t *layers = json_object_get(json_object_get(j, "architecture"), "layers");
    assert_true(json_real_value(json_object_get(json_array_get(layers, 2), "s_neg")) == 0.25);
    assert_true(json_is_false(json_object_get(json_array_get(layers, 1), "bias")));
    json_t *cert = json_object_get(j, "certify");
    assert_int_equal(json_integer_value(json_object_get(cert, "probes")), 8);
    assert_int_equal(json_integer_value(json_object_get(j, "max_batch")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "trajectory_every")), 0);
    json_decref(j);
    spec_experiment_free(exp);

    /* "sgd" stays "sgd"; explicit padding stays an integer; by-id references stay ids */
    exp = parse_ok(round_trip_bodies[4]);
    j = spec_experiment_to_json(exp);
    layers = json_object_get(json_object_get(j, "architecture"), "layers");
    assert_string_equal(json_string_value(json_object_get(json_array_get(layers, 0), "padding")),
                        "same");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(layers, 3), "padding")), 1);
    json_decref(j);
    spec_experiment_free(exp);
    exp = parse_ok(round_trip_bodies[11]);
    assert_null(exp->dataset);
    assert_null(exp->arch);
    assert_string_equal(exp->dataset_id, "ds_1");
    j = spec_experiment_to_json(exp);
    assert_string_equal(json_string_value(json_object_get(j, "architecture_id")), "ar_2");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "optimizer"), "kind")),
                        "sgd");
    json_decref(j);
    spec_experiment_free(exp);
}

/* ---- datasets ---- */

static void test_dataset_kinds(void **state)
{
    (void)state;
    struct spec_experiment *exp = parse_ok(round_trip_bodies[5]); /* csv with a header */
    const basin_dataset *ds = exp->dataset->data;
    assert_int_equal(ds->n, 4);
    assert_int_equal(ds->in_dim, 2);
    assert_int_equal(ds->y_dim, 1);
    assert_true(ds->x[2] == 0.0 && ds->x[3] == 1.0 && ds->y[1] == 1.0 && ds->y[3] == 0.0);
    assert_int_equal(ds->task, BASIN_TASK_BINARY);
    assert_int_equal(exp->train.init.kind, BASIN_INIT_GIVEN);
    assert_int_equal(exp->train.init.given_len, 17);
    assert_true(exp->train.init.given[16] == 17.0);
    spec_experiment_free(exp);

    exp = parse_ok(round_trip_bodies[4]); /* bars_stripes 4×4 */
    assert_int_equal(exp->dataset->in_rank, 3);
    assert_int_equal(exp->dataset->in_shape[0], 1);
    assert_int_equal(exp->dataset->in_shape[1], 4);
    assert_int_equal(exp->dataset->data->n, 16);
    assert_int_equal(exp->arch->arch.in_rank, 3);
    spec_experiment_free(exp);

    exp = parse_ok(round_trip_bodies[3]); /* the teacher generator */
    assert_int_equal(exp->dataset->data->in_dim, 3);
    assert_non_null(exp->dataset->teacher_arch);
    assert_int_equal(exp->dataset->teacher_arch->arch.in_shape[0], 3);
    assert_ptr_equal(exp->dataset->gen.teacher, &exp->dataset->teacher_arch->arch);
    spec_experiment_free(exp);

    exp = parse_ok(round_trip_bodies[9]); /* teacher_gaussian with a matrix */
    assert_null(exp->dataset->data);
    assert_int_equal(exp->dataset->tg.teacher, SPEC_TEACHER_MATRIX);
    assert_true(exp->dataset->tg.matrix[4] == 0.5);
    json_t *sum = spec_dataset_summary(exp->dataset);
    assert_int_equal(json_integer_value(json_object_get(sum, "k")), 2);
    assert_null(json_object_get(sum, "n"));
    json_decref(sum);
    spec_experiment_free(exp);
}

static void test_standalone_parsers(void **state)
{
    (void)state;
    struct spec_errors errs;
    spec_errors_init(&errs);
    char *text = q("{'kind':'inline','x':[[1],[2,3]],'y':[0,1]}");
    json_t *body = json_loads(text, 0, NULL);
    struct spec_dataset *ds = NULL;
    assert_int_equal(spec_dataset_parse(body, NULL, &ds, &errs), BASIN_EINVAL);
    assert_null(ds);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.items[0].pointer, "/x/1"); /* relative to the dataset body */
    spec_errors_clear(&errs);
    json_decref(body);
    free(text);

    text = q("{'kind':'inline','name':'pts','x':[[1],[2],[3]],'y':[0,1,2]}");
    body = json_loads(text, 0, NULL);
    assert_int_equal(spec_dataset_parse(body, NULL, &ds, &errs), BASIN_OK);
    json_t *sum = spec_dataset_summary(ds);
    assert_int_equal(json_integer_value(json_object_get(sum, "n")), 3);
    assert_string_equal(json_string_value(json_object_get(sum, "name")), "pts");
    assert_string_equal(json_string_value(json_object_get(sum, "task")), "multiclass");
    assert_int_equal(json_integer_value(json_object_get(sum, "n_classes")), 3);
    json_decref(sum);
    spec_dataset_free(ds);
    json_decref(body);
    free(text);

    text = q("{'layers':" LAYERS "}");
    body = json_loads(text, 0, NULL);
    struct spec_arch *arch = NULL;
    assert_int_equal(spec_arch_parse(body, NULL, &arch, &errs), BASIN_EINVAL);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.items[0].pointer, "/input_shape");
    spec_errors_clear(&errs);
    json_decref(body);
    free(text);

    text = q("{'input_shape':[2],'layers':" LAYERS "}");
    body = json_loads(text, 0, NULL);
    assert_int_equal(spec_arch_parse(body, NULL, &arch, &errs), BASIN_OK);
    sum = spec_arch_summary(arch);
    assert_int_equal(json_integer_value(json_object_get(sum, "param_count")), 17);
    assert_int_equal(json_integer_value(json_object_get(sum, "output_dim")), 1);
    assert_int_equal(json_array_size(json_object_get(sum, "layers")), 3);
    json_decref(sum);
    spec_arch_free(arch);
    json_decref(body);
    free(text);

    /* destructors accept NULL */
    spec_arch_free(NULL);
    spec_dataset_free(NULL);
    spec_experiment_free(NULL);
    spec_errors_clear(NULL);
}

/* ---- limits before allocation ---- */

/* Parse body with a counting allocator: the largest single basin allocation must stay small. */
static void expect_rejected_small(const char *body, const struct limits *lim, const char *pointer,
                                  const char *message)
{
    failing_alloc fa;
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    char *text = q(body);
    failing_alloc_install(&fa, 0, FAILING_ALLOC_FROM_N);
    int rc = spec_experiment_parse_text(text, strlen(text), lim, &exp, &errs);
    int found = 0;
    for (size_t i = 0; i < errs.count; i++)
        if (strcmp(errs.items[i].pointer, pointer) == 0 &&
            strstr(errs.items[i].message, message) != NULL)
            found = 1;
    if (!found)
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "  %s: %s\n", errs.items[i].pointer, errs.items[i].message);
    spec_errors_clear(&errs);
    failing_alloc_remove();
    free(text);
    assert_int_equal(rc, BASIN_EINVAL);
    assert_true(found);
    assert_int_equal(fa.live, 0);
    /* nothing proportional to the rejected size was requested */
    assert_true(fa.peak_bytes < 64 * 1024);
}

static void test_limits_before_allocation(void **state)
{
    (void)state;
    struct limits lim;
    limits_defaults(&lim);
    expect_rejected_small(WITH_LAYERS("[{'type':'dense','units':1000000000}]"), &lim,
                          "/architecture/layers/0/units", "≤ 65536");
    expect_rejected_small(WITH_DS("{'kind':'generator','generator':{'name':'xor','n':1e9}}"), &lim,
                          "/dataset/generator/n", "≤ 100000");
    expect_rejected_small(WITH_LAYERS("[{'type':'dense','units':65536},{'type':'dense','units':"
                                      "65536},{'type':'dense','units':1}]"),
                          &lim, "/architecture", "parameters");

    struct limits small = lim;
    small.max_points = 3;
    expect_rejected_small(B(""), &small, "/dataset/x", "has 4 rows; the limit is 3 points");
    small = lim;
    small.max_dataset_values = 7;
    expect_rejected_small(B(""), &small, "/dataset/x", "exceed the limit of 7 dataset values");
    small = lim;
    small.max_dataset_values = 1000;
    expect_rejected_small(WITH_DS("{'kind':'generator','generator':{'name':'bars_stripes','n':"
                                  "100,'image_size':4}}"),
                          &small, "/dataset/generator/n", "exceed the limit of 1000");
    small = lim;
    small.max_input_dim = 1;
    expect_rejected_small(B(""), &small, "/dataset/x/0", "the limit is 1 per input");
    small = lim;
    small.max_params = 5;
    expect_rejected_small(B(",'init':{'kind':'given','params':[1,2,3,4,5,6]}"), &small,
                          "/init/params", "has 6 values; the limit is 5");
    expect_rejected_small(B(""), &small, "/architecture", "has 17 parameters; the limit is 5");
    small = lim;
    small.max_layers = 2;
    expect_rejected_small(B(""), &small, "/architecture/layers", "has 3 layers; the limit is 2");
    small = lim;
    small.max_restarts = 10;
    expect_rejected_small(B(",'restarts':11"), &small, "/restarts", "≤ 10");
    small = lim;
    small.max_classes = 2;
    expect_rejected_small("{" DS4 ",'architecture':{'layers':[{'type':'dense','units':3}]},'loss':"
                          "'cross_entropy'}",
                          &small, "/loss", "3 classes; the limit is 2");
    small = lim;
    small.max_body_bytes = 16;
    expect_rejected_small(B(""), &small, "", "the limit is 16");
}

/* The body parses under lim (no errors). */
static void expect_accepted(const char *body, const struct limits *lim)
{
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    int rc = parse_q(body, lim, &exp, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "unexpected error %s: %s\n", errs.items[i].pointer, errs.items[i].message);
    assert_int_equal(rc, BASIN_OK);
    spec_experiment_free(exp);
    spec_errors_clear(&errs);
}

#define TG_BODY(ds)                                                                                \
    "{'dataset':" ds ",'architecture':{'layers':[{'type':'dense','units':3,'bias':false},"         \
    "{'type':'activation','kind':'relu'},{'type':'sum'}]}}"
#define IMG1_DS "'dataset':{'kind':'inline','input_shape':[1,1,1],'x':[[0.5],[1]],'y':[0,1]}"
#define PAD_LAYERS(pad)                                                                            \
    "{" IMG1_DS                                                                                    \
    ",'architecture':{'layers':[{'type':'conv2d','filters':1,'kernel':1,'padding':" pad            \
    "},{'type':'flatten'},{'type':'dense','units':1}]}}"
#define GEN_TEACHER(n, units)                                                                      \
    "{'dataset':{'kind':'generator','generator':{'name':'teacher','n':" n ",'dim':2,'teacher':{"   \
    "'layers':[{'type':'dense','units':" units "},{'type':'dense','units':1}]}}},"                 \
    "'architecture':{'layers':[{'type':'dense','units':1}]}}"

/* Work and memory that used to be unbounded (issue 8): each refused from the published limits
 * before anything proportional to it is allocated or computed, at the field that sets it; the
 * formulas are pinned by accepting the body exactly at the limit and refusing it one below. */
static void test_work_and_activation_limits(void **state)
{
    (void)state;
    struct limits lim, small;
    limits_defaults(&lim);

    /* teacher_gaussian: k² · d of setup for every teacher kind, k · d weights for every kind */
    expect_rejected_small(TG_BODY("{'kind':'teacher_gaussian','k':2048,'d':2048}"), &lim,
                          "/dataset/k", "k² × d");
    expect_rejected_small(
        TG_BODY("{'kind':'teacher_gaussian','k':2048,'d':2048,'teacher':'random_orthonormal'}"),
        &lim, "/dataset/k", "k² × d");
    expect_rejected_small(TG_BODY("{'kind':'teacher_gaussian','k':16384,'d':16384}"), &lim,
                          "/dataset/k", "teacher weights exceed the limit of 10000000");
    small = lim;
    small.max_teacher_work = 12; /* k = 2, d = 3: k²·d = 12 (k·d² would be 18) */
    expect_accepted(TG_BODY("{'kind':'teacher_gaussian','k':2,'d':3}"), &small);
    small.max_teacher_work = 11;
    expect_rejected_small(TG_BODY("{'kind':'teacher_gaussian','k':2,'d':3}"), &small, "/dataset/k",
                          "the limit of 11");
    expect_rejected_small(
        TG_BODY("{'kind':'teacher_gaussian','k':2,'d':3,'teacher':[[1,0,0],[0,1,0]]}"), &small,
        "/dataset/k", "the limit of 11");
    small = lim;
    small.max_dataset_values = 5; /* a matrix teacher's k · d, named at k (was /teacher/teacher) */
    expect_rejected_small(
        TG_BODY("{'kind':'teacher_gaussian','k':2,'d':3,'teacher':[[1,0,0],[0,1,0]]}"), &small,
        "/dataset/k", "2 × 3 teacher weights");

    /* the teacher generator: n × the teacher's multiply-adds per sample. A dense(3) on 2
     * inputs then dense(1): 2·3 + 3 values + 3·1 + 1 value = 13 per sample, × n = 4 → 52 */
    expect_rejected_small(GEN_TEACHER("100000", "10000"), &lim, "/dataset/generator/n",
                          "multiply-adds per sample");
    small = lim;
    small.max_generator_work = 52;
    expect_accepted(GEN_TEACHER("4", "3"), &small);
    small.max_generator_work = 51;
    expect_rejected_small(GEN_TEACHER("4", "3"), &small, "/dataset/generator/n",
                          "4 samples × 13 multiply-adds");
    small = lim;
    small.max_batch_activations = 15; /* n = 4 × (3 + 1) values */
    expect_rejected_small(GEN_TEACHER("4", "3"), &small, "/dataset/generator/n",
                          "values per sample of the teacher");

    /* activations per sample: two parameters, but a 32001 × 32001 feature map */
    expect_rejected_small(PAD_LAYERS("16000"), &lim, "/architecture/layers/0/padding",
                          "values per sample");
    expect_rejected_small(PAD_LAYERS("65536"), &lim, "/architecture/layers/0/padding",
                          "values per sample");
    /* LAYERS: dense 4, relu, dense 1 = 4 + 4 + 1 values per sample */
    small = lim;
    small.max_activations = 9;
    expect_accepted(B(""), &small);
    small.max_activations = 8; /* crossed at the last dense layer */
    expect_rejected_small(B(""), &small, "/architecture/layers/2/units", "9 values per sample");
    small.max_activations = 7; /* crossed at the relu, which copies the dense layer before it */
    expect_rejected_small(B(""), &small, "/architecture/layers/0/units", "8 values per sample");
    small.max_activations = 10; /* conv 3 filters on [1,2,2]: 12 values, set by "filters" */
    expect_rejected_small(WITH_IMG_LAYERS("[{'type':'conv2d','filters':3,'kernel':1},{'type':"
                                          "'flatten'},{'type':'dense','units':1}]"),
                          &small, "/architecture/layers/0/filters", "12 values per sample");

    /* the training workspace: samples evaluated at once × values per sample (4 × 9 = 36) */
    small = lim;
    small.max_batch_activations = 36;
    expect_accepted(B(""), &small);
    small.max_batch_activations = 35;
    expect_rejected_small(B(""), &small, "/max_batch", "set max_batch ≤ 3");
    expect_accepted(B(",'max_batch':3"), &small);
    small.max_batch_activations = 8;
    expect_rejected_small(B(",'max_batch':1"), &small, "/architecture", "even one sample");
}

/* ---- allocation failures ---- */

static int parse_and_free(void *arg)
{
    const char *text = arg;
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    int rc = spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs);
    if (rc == BASIN_OK) {
        json_t *j = spec_experiment_to_json(exp);
        if (j == NULL)
            rc = BASIN_ENOMEM;
        json_decref(j);
    }
    spec_experiment_free(exp);
    spec_errors_clear(&errs);
    return rc;
}

static int parse_invalid_and_free(void *arg)
{
    int rc = parse_and_free(arg);
    return rc == BASIN_EINVAL ? BASIN_OK : rc;
}

static void test_allocation_failures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof round_trip_bodies / sizeof round_trip_bodies[0]; i++) {
        char *text = q(round_trip_bodies[i]);
        failing_alloc_report rep;
        int ok = failing_alloc_sweep(parse_and_free, text, FAILING_ALLOC_FROM_N, 0, &rep);
        if (!ok)
            fprintf(stderr, "case %zu: bad at N = %zu (rc %d, %ld live)\n", i, rep.bad_n,
                    rep.bad_rc, rep.bad_live);
        assert_true(ok);
        assert_true(rep.runs > 0);
        free(text);
    }
    /* error paths allocate too (the error list): a failure there is ENOMEM, never a crash */
    char *text = q("{'dataset':{'kind':'inline','x':[[0,'a']],'y':['b']},'architecture':{"
                   "'layers':[{'type':'dense','units':0}]},'zz':1}");
    failing_alloc_report rep;
    assert_true(failing_alloc_sweep(parse_invalid_and_free, text, FAILING_ALLOC_FROM_N, 0, &rep));
    free(text);
}

static void test_limits_json(void **state)
{
    (void)state;
    struct limits lim;
    limits_defaults(&lim);
    json_t *j = limits_to_json(&lim);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 16); /* 15 limits and rate_limit */
    assert_true(json_is_null(json_object_get(j, "rate_limit")));
    assert_int_equal(json_integer_value(json_object_get(j, "max_activations")), 1 << 22);
    assert_int_equal(json_integer_value(json_object_get(j, "max_batch_activations")), 1 << 26);
    assert_int_equal(json_integer_value(json_object_get(j, "max_teacher_work")), 100000000);
    assert_int_equal(json_integer_value(json_object_get(j, "max_generator_work")), 1000000000);
    assert_int_equal(json_integer_value(json_object_get(j, "max_width")), 65536);
    assert_int_equal(json_integer_value(json_object_get(j, "max_body_bytes")), 32 << 20);
    assert_int_equal(json_integer_value(json_object_get(j, "max_trajectory_points")), 10000);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_all_errors_collected),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_canonical_values),
        cmocka_unit_test(test_dataset_kinds),
        cmocka_unit_test(test_standalone_parsers),
        cmocka_unit_test(test_limits_before_allocation),
        cmocka_unit_test(test_work_and_activation_limits),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_limits_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
