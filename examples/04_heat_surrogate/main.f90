! Example 04: a 2-D heat diffusion that calls an ONNX surrogate every time step.
! The solver's own explicit step and the surrogate's are compared each step; the
! surrogate's result drives the simulation. The same program runs in process or against
! a server, chosen by the address alone.
!   04_heat_surrogate ADDRESS MODEL.onnx
program heat
  use, intrinsic :: iso_fortran_env, only: real32, real64
  use insitu
  implicit none
  integer, parameter :: nx = 32, ny = 24, steps = 25
  real(real32), parameter :: alpha = 0.2_real32
  real(real32) :: u(1, 1, nx, ny), expected(1, 1, nx, ny), padded(0:nx + 1, 0:ny + 1)
  type(insitu_client) :: c
  character(len=512) :: address, model
  real(real32) :: worst
  real(real64) :: checksum
  integer :: step, i, j

  call get_command_argument(1, address)
  call get_command_argument(2, model)
  call c%connect(trim(address))
  call c%set_model_from_file("heat_step", trim(model))

  u = 0
  u(1, 1, nx / 4:3 * nx / 4, ny / 3:2 * ny / 3) = 100
  worst = 0
  do step = 1, steps
    ! The solver's explicit step, zero boundaries.
    padded = 0
    padded(1:nx, 1:ny) = u(1, 1, :, :)
    do j = 1, ny
      do i = 1, nx
        expected(1, 1, i, j) = padded(i, j) + alpha * (padded(i - 1, j) + padded(i + 1, j) &
          + padded(i, j - 1) + padded(i, j + 1) - 4 * padded(i, j))
      end do
    end do
    ! The surrogate's step.
    call c%put_tensor("u", u)
    call c%run_model("heat_step", ["u"], ["u_next"])
    call c%get_tensor("u_next", u)
    worst = max(worst, maxval(abs(u - expected)))
  end do
  checksum = sum(reshape(real(u, real64), [nx * ny]) * [(real(i, real64), i = 1, nx * ny)])
  print '(a, es10.3)', "example 04: max |surrogate - solver| over all steps = ", worst
  print '(a, es25.17)', "checksum = ", checksum
  if (worst > 1e-3_real32) error stop "surrogate disagrees with the solver"
end program heat
