/* The Gaussian teacher–student population risk in closed form (Safran & Shamir, ICML 2018).
 *
 * Student f_W(x) = Σ_{i<n} relu(w_i·x), teacher f_V(x) = Σ_{j<k} relu(v_j·x), x ~ N(0, I_d);
 * F(W) = ½ E[(f_W(x) − f_V(x))²]. W is n × d row-major, which is exactly the parameter vector θ
 * of the net [dense(n, bias = false), relu, sum] on input [d], so F is the infinite-sample limit
 * of that net's squared-loss empirical risk on teacher-labelled Gaussian data.
 *
 * Value, gradient, Hessian and Hessian-vector products are closed forms (derivation in
 * teacher.c). A student row w_i = 0 is a dead unit, as in the network with relu'(0) = 0: it
 * contributes nothing to F and its gradient block and Hessian rows and columns are zero. */
#ifndef BASIN_TEACHER_H
#define BASIN_TEACHER_H

#include <stddef.h>
#include <stdint.h>

#include "basin/objective.h"

/* Read-only after creation (vnorm and risk_const are derived from v). */
typedef struct basin_teacher {
    size_t k, d;
    double *v;         /* k × d row-major, owned */
    double *vnorm;     /* k row norms ‖v_j‖, owned */
    double risk_const; /* ½ Σ_{i,j} κ(v_i, v_j) = ½ E[f_V(x)²] */
} basin_teacher;

/* κ(u, v) = E[relu(u·x) relu(v·x)] = ‖u‖‖v‖(sin θ + (π − θ) cos θ)/(2π), θ = ∠(u, v);
 * 0 when u or v is 0. */
double basin_teacher_kappa(size_t d, const double *u, const double *v);

/* v_j = e_j (the standard basis), 1 ≤ k ≤ d; otherwise BASIN_EINVAL. */
int basin_teacher_create_identity(size_t k, size_t d, basin_teacher **out);
/* k orthonormal rows, Haar-distributed, from the Gaussian stream (seed, 0): the Q factor of a
 * d × k Gaussian matrix with the signs of R's diagonal divided out. 1 ≤ k ≤ d. */
int basin_teacher_create_random_orthonormal(size_t k, size_t d, uint64_t seed, basin_teacher **out);
/* A copy of v (k × d row-major; finite values, zero rows allowed). */
int basin_teacher_create_given(size_t k, size_t d, const double *v, basin_teacher **out);
void basin_teacher_free(basin_teacher *t);

/* *value = F(W) and, when grad != NULL, grad = ∇F(W) (n × d). W holds n ≥ 1 rows of t->d.
 * Allocates n doubles of scratch (BASIN_ENOMEM). */
int basin_teacher_risk_grad(const basin_teacher *t, size_t n, const double *W, double *value,
                            double *grad);

/* H = ∇²F(W), (n·d) × (n·d) row-major, from the closed form; BASIN_ERANGE when (n·d)² overflows.
 */
int basin_teacher_hessian(const basin_teacher *t, size_t n, const double *W, double *H);

/* hv = ∇²F(W) v in O(n(n + k)d) without forming H. */
int basin_teacher_hvp(const basin_teacher *t, size_t n, const double *W, const double *v,
                      double *hv);

/* The objective θ = W ↦ F (dim = n·d, n_samples = 0, idx ignored) with value_grad and hvp. It
 * owns a copy of the teacher; release with basin_objective_release. */
int basin_teacher_objective(const basin_teacher *t, size_t n_students, basin_objective *out);

#endif
